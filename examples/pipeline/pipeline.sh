#!/usr/bin/env bash
# meshform in a pull-request pipeline: the steps meshform.yml runs, the same on a laptop.
#
#   pipeline.sh plan    synthesize, plan as one pull-request comment (updated in place on every push), and fail
#                       the check when a gate blocked (exit 3) or the plan is incomplete (exit 1)
#   pipeline.sh apply   deploy: apply every stack's plan in dependency order (refused while a gate blocks)
#
# Run it in the project directory (the one holding cdktf.json). Environment:
#   MESHFORM              the meshform command (default: npx --no-install meshform)
#   MESHFORM_PLAN_FLAGS   more options for meshform plan (e.g. --offline)
#   MESHFORM_ALLOW        gates acknowledged for this run, space-separated (e.g. "server-quorum"): the plan and
#                         the deploy both get --allow for each
#   MESHFORM_PLAN_FILE    where the comment is written (default: meshform-plan.md)
#   PR_NUMBER             the pull request to comment on (none: the comment is only written to the file), with
#   GITHUB_TOKEN, GITHUB_REPOSITORY and GITHUB_API_URL (set by GitHub Actions)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
read -r -a meshform <<< "${MESHFORM:-npx --no-install meshform}"
read -r -a flags <<< "${MESHFORM_PLAN_FLAGS:-}"
allow=()
for gate in ${MESHFORM_ALLOW:-}; do allow+=(--allow "$gate"); done

case "${1:-}" in
  plan)
    out="${MESHFORM_PLAN_FILE:-meshform-plan.md}"
    "${meshform[@]}" synth
    set +e
    "${meshform[@]}" plan --markdown "${flags[@]}" "${allow[@]}" > "$out"
    code=$?
    set -e
    if [ -n "${PR_NUMBER:-}" ] && [ -s "$out" ]; then
      node "$here/sticky-comment.mjs" "$out"
    fi
    case "$code" in
      0 | 2) echo "meshform plan: exit $code, the check passes" ;;
      3)
        echo "meshform plan: a gate blocked (exit 3): the comment says why and the safe way; to go ahead as planned, run again with MESHFORM_ALLOW" >&2
        exit 3
        ;;
      *)
        echo "meshform plan: incomplete (exit $code): it cannot tell the whole change, so the check fails" >&2
        exit "$code"
        ;;
    esac
    ;;
  apply)
    "${meshform[@]}" deploy --auto-approve "${allow[@]}"
    ;;
  *)
    echo "usage: pipeline.sh plan|apply" >&2
    exit 2
    ;;
esac
