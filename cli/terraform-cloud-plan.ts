/**
 * Plans a stack whose state is in Terraform Cloud (or Terraform Enterprise) through its API, the API-driven run
 * workflow Terraform's own `cloud` backend uses: a configuration version (speculative, or provisional for a saved
 * plan), the stack's directory uploaded to it as a .tar.gz, a run (`plan-only`, or `save-plan`), its status
 * polled to the end of the plan, then the plan's JSON (`terraform show -json` format) read back, which meshform
 * summarizes and gates exactly as it does a local plan.
 *
 * API facts (hashicorp/terraform-docs-common, website/docs/cloud-docs/api-docs/): configuration-versions.mdx
 * (create with `auto-queue-runs`/`speculative`, `upload-url`, PUT as application/octet-stream, states
 * pending/uploaded/errored), run.mdx (create with `plan-only` and relationships workspace and
 * configuration-version, run states), plans.mdx (`GET /plans/:id/json-output`: 204 while not completed, 307 to a
 * temporary URL, a user or team token with admin access); hashicorp/go-tfe run.go (`save-plan`, status
 * `planned_and_saved`); hashicorp/terraform internal/cloud/backend_plan.go (`auto-queue-runs` false, speculative
 * without -out, `provisional` with it, `save-plan` on the run, and the workspace's `can-queue-run` permission).
 *
 * A saved plan run is applied by `applyInTerraformCloud` (run.mdx "Apply a Run"), which `meshform deploy` uses.
 *
 * Terraform Cloud answers 404 both for "does not exist" and for "not allowed", and 401/403 for a token it does
 * not accept: each is "cannot tell" (the plan is incomplete), never "nothing applied".
 */
import { spawnSync } from 'node:child_process';

/** How a remote plan is made: speculative (plan-only, never applied) or a saved plan run (confirmable). */
export type RemotePlanMode = 'speculative' | 'saved';

/** Where a stack's workspace is. */
export interface TerraformCloudWorkspace {
  readonly hostname: string;
  readonly organization: string;
  readonly workspace: string;
}

/** How one workspace's API is reached and followed (a remote plan's or apply's). */
export interface TerraformCloudCallOptions {
  readonly target: TerraformCloudWorkspace;
  /** API base URL, e.g. `https://app.terraform.io`. */
  readonly baseUrl: string;
  readonly token: string;
  /** First wait between two status reads, in milliseconds (doubles up to 5 s). */
  readonly pollMs?: number;
  /** Gives up waiting after this long, in milliseconds. */
  readonly timeoutMs?: number;
  /** Stops waiting when it aborts (an interruption). */
  readonly signal?: AbortSignal;
  readonly progress?: (message: string) => void;
}

/** Options of one remote plan. */
export interface RemotePlanOptions extends TerraformCloudCallOptions {
  /** The stack's synthesized directory (uploaded as the configuration). */
  readonly stackDir: string;
  readonly mode: RemotePlanMode;
  /** A destroy plan (the stack left the app). */
  readonly destroy?: boolean;
  /** The run's message in Terraform Cloud. */
  readonly message: string;
}

/** The outcome of a remote plan. */
export type RemotePlanOutcome =
  /** Planned: the plan JSON (the format of `terraform show -json`) and the run that made it. */
  | { readonly kind: 'planned'; readonly plan: unknown; readonly run: string; readonly url: string }
  /** The workspace runs on this machine (execution mode local): plan it with terraform here. */
  | { readonly kind: 'local' }
  /** The API does not let meshform see or plan the workspace: what it would change is unknown. */
  | { readonly kind: 'cannot-tell'; readonly reason: string }
  /** The plan ran and failed (the configuration, the run, the upload). */
  | { readonly kind: 'failed'; readonly reason: string };

/** The variable that points meshform at another Terraform Cloud API (a stand-in in tests, or a TFE address). */
export const TERRAFORM_CLOUD_URL_VARIABLE = 'MESHFORM_TFC_API_URL';

/**
 * The API base URL of a Terraform Cloud host: `https://<hostname>`, or MESHFORM_TFC_API_URL (an http(s) URL)
 * when set, for a Terraform Enterprise reached at another address or a stand-in in tests.
 */
export function terraformCloudBaseUrl(hostname: string): string {
  const configured = process.env[TERRAFORM_CLOUD_URL_VARIABLE];
  if (configured) {
    if (!/^https?:\/\/[^/\s]+\/?$/.test(configured))
      throw new Error(
        `${TERRAFORM_CLOUD_URL_VARIABLE}=${configured} is not an http(s) base URL: give one such as https://tfe.example.com`,
      );
    return configured.replace(/\/$/, '');
  }
  return `https://${hostname}`;
}

interface Resource {
  readonly id: string;
  readonly attributes?: { readonly [name: string]: unknown };
  readonly relationships?: { readonly [name: string]: { readonly data?: { readonly id?: string } | null } };
}

/** Run states after which no plan comes (run.mdx "Run States"; go-tfe run.go). */
const RUN_FAILED: { readonly [status: string]: string } = {
  errored: 'errored',
  canceled: 'was canceled',
  force_canceled: 'was force-canceled',
  discarded: 'was discarded',
  policy_soft_failed: 'stopped: a Sentinel policy soft-failed',
  policy_override: 'waits for a Sentinel policy override',
};

/** The plan's directory as a .tar.gz (what `upload-url` takes), without Terraform's working files. */
function configurationTarball(stackDir: string): Buffer | string {
  const tar = spawnSync(
    'tar',
    ['-czf', '-', '--exclude=./.terraform', '--exclude=*.tfplan', '--exclude=*.tfstate*', '-C', stackDir, '.'],
    { maxBuffer: 1024 * 1024 * 1024 },
  );
  if (tar.error) return `tar cannot run: ${tar.error.message}`;
  if (tar.status !== 0) return `tar failed: ${tar.stderr.toString().trim()}`;
  return tar.stdout;
}

class CannotTell extends Error {}
class Failed extends Error {}

interface ApiResult {
  readonly status: number;
  readonly data?: Resource;
  readonly text: string;
}

/**
 * A client of one workspace's API: `call` makes one API call (a refusal, 401/403/404, is "cannot tell", any other
 * error status a failure); `pause` waits between two status reads, growing the interval, and fails past the
 * deadline or on interruption; `restart` sets the interval back to its first value.
 */
function apiClient(name: string, options: TerraformCloudCallOptions) {
  const deadline = Date.now() + (options.timeoutMs ?? 3_600_000);
  const headers = { Authorization: `Bearer ${options.token}`, 'Content-Type': 'application/vnd.api+json' };
  const call = async (what: string, method: string, resource: string, body?: unknown): Promise<ApiResult> => {
    let response: Response | undefined;
    for (let attempt = 1; !response; attempt++) {
      try {
        response = await fetch(`${options.baseUrl}/api/v2/${resource}`, {
          method,
          headers,
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          ...(options.signal ? { signal: options.signal } : {}),
        });
      } catch (e) {
        // a kept-alive connection the server closed meanwhile: once more, on a new one
        if (attempt >= 3 || options.signal?.aborted) throw new Failed(`${what}: ${(e as Error).message}`);
      }
    }
    const text = await response.text();
    if (response.status === 401 || response.status === 403 || response.status === 404)
      throw new CannotTell(
        `Terraform Cloud answers HTTP ${response.status} to ${what} of ${name}: ` +
          (response.status === 404
            ? 'it does not exist, or the token may not do this (the API gives the same answer for both)'
            : response.status === 401
              ? 'the token is not accepted'
              : 'the token is not allowed to'),
      );
    if (!response.ok && response.status !== 204)
      throw new Failed(`Terraform Cloud answers HTTP ${response.status} to ${what} of ${name}: ${errorDetail(text)}`);
    let data: Resource | undefined;
    if (text.trim() !== '' && response.status !== 204) {
      try {
        data = (JSON.parse(text) as { data?: Resource }).data;
      } catch {
        // not a JSON:API document (the plan JSON is read as text)
      }
    }
    return { status: response.status, ...(data ? { data } : {}), text };
  };
  let interval = options.pollMs ?? 1000;
  const pause = async (waitingFor: string) => {
    if (Date.now() > deadline) throw new Failed(`gave up waiting for ${waitingFor} in ${name}`);
    if (options.signal?.aborted) throw new Failed(`interrupted while waiting for ${waitingFor} in ${name}`);
    await new Promise((resolve) => setTimeout(resolve, interval));
    interval = Math.min(interval * 2, 5000);
  };
  const restart = () => {
    interval = options.pollMs ?? 1000;
  };
  return { call, pause, restart };
}

/** Plans one stack in its Terraform Cloud workspace; never throws. */
export async function planInTerraformCloud(options: RemotePlanOptions): Promise<RemotePlanOutcome> {
  const { target, baseUrl } = options;
  const name = `workspace ${target.organization}/${target.workspace}`;
  const { call, pause, restart } = apiClient(name, options);

  try {
    const ws = await call(
      'reading',
      'GET',
      `organizations/${encodeURIComponent(target.organization)}/workspaces/${encodeURIComponent(target.workspace)}`,
    );
    if (!ws.data) throw new Failed(`Terraform Cloud's answer for ${name} is not a workspace`);
    if (ws.data.attributes?.['execution-mode'] === 'local') return { kind: 'local' };
    const permissions = ws.data.attributes?.permissions as { 'can-queue-run'?: boolean } | undefined;
    if (permissions?.['can-queue-run'] === false)
      throw new CannotTell(`the token may not queue plans in ${name} (its can-queue-run permission is false)`);

    const tarball = configurationTarball(options.stackDir);
    if (typeof tarball === 'string') throw new Failed(tarball);
    options.progress?.('uploading the configuration');
    const cv = await call(
      'creating a configuration version',
      'POST',
      `workspaces/${ws.data.id}/configuration-versions`,
      {
        data: {
          type: 'configuration-versions',
          attributes: {
            'auto-queue-runs': false,
            speculative: options.mode === 'speculative',
            ...(options.mode === 'saved' ? { provisional: true } : {}),
          },
        },
      },
    );
    const uploadUrl = cv.data?.attributes?.['upload-url'];
    if (!cv.data || typeof uploadUrl !== 'string')
      throw new Failed(`Terraform Cloud's configuration version for ${name} has no upload-url`);
    let upload: Response;
    try {
      // the upload URL is pre-authorized: the token is not sent there
      upload = await fetch(uploadUrl, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/octet-stream' },
        body: new Uint8Array(tarball),
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (e) {
      throw new Failed(`uploading the configuration of ${name}: ${(e as Error).message}`);
    }
    if (!upload.ok)
      throw new Failed(
        `uploading the configuration of ${name}: HTTP ${upload.status} ${errorDetail(await upload.text())}`,
      );
    for (;;) {
      const read = await call('reading the configuration version', 'GET', `configuration-versions/${cv.data.id}`);
      const status = read.data?.attributes?.status;
      if (status === 'uploaded') break;
      if (status === 'errored')
        throw new Failed(
          `Terraform Cloud could not process the configuration of ${name}: ${String(read.data?.attributes?.['error-message'] ?? 'errored')}`,
        );
      await pause('the configuration upload');
    }

    const run = await call('creating a run', 'POST', 'runs', {
      data: {
        type: 'runs',
        attributes: {
          message: options.message,
          ...(options.mode === 'speculative' ? { 'plan-only': true } : { 'save-plan': true }),
          ...(options.destroy ? { 'is-destroy': true } : {}),
        },
        relationships: {
          workspace: { data: { type: 'workspaces', id: ws.data.id } },
          'configuration-version': { data: { type: 'configuration-versions', id: cv.data.id } },
        },
      },
    });
    if (!run.data) throw new Failed(`Terraform Cloud's answer to creating a run in ${name} is not a run`);
    const runId = run.data.id;
    const url = `${baseUrl}/app/${encodeURIComponent(target.organization)}/workspaces/${encodeURIComponent(target.workspace)}/runs/${runId}`;
    options.progress?.(`run ${runId}`);
    const done =
      options.mode === 'speculative' ? ['planned_and_finished'] : ['planned_and_saved', 'planned_and_finished'];
    let planId: string | undefined;
    for (restart(); ; ) {
      const read = await call(`reading run ${runId}`, 'GET', `runs/${runId}`);
      const status = String(read.data?.attributes?.status ?? '');
      const failed = RUN_FAILED[status];
      if (failed) throw new Failed(`Terraform Cloud run ${runId} of ${name} ${failed} (${url})`);
      if (done.includes(status)) {
        planId = read.data?.relationships?.plan?.data?.id ?? undefined;
        break;
      }
      await pause(`run ${runId} (${status || 'no status'})`);
    }
    if (!planId) throw new Failed(`Terraform Cloud run ${runId} of ${name} names no plan`);
    for (restart(); ; ) {
      // 204 until the plan's JSON exists; then a temporary redirect to it, which fetch follows
      const json = await call(`reading the JSON of plan ${planId}`, 'GET', `plans/${planId}/json-output`);
      if (json.status !== 204) {
        try {
          return { kind: 'planned', plan: JSON.parse(json.text) as unknown, run: runId, url };
        } catch (e) {
          throw new Failed(`the JSON of plan ${planId} of ${name} is not JSON: ${(e as Error).message}`);
        }
      }
      await pause(`the JSON of plan ${planId}`);
    }
  } catch (e) {
    if (e instanceof CannotTell) return { kind: 'cannot-tell', reason: e.message };
    if (e instanceof Failed) return { kind: 'failed', reason: e.message };
    return { kind: 'failed', reason: `Terraform Cloud (${target.hostname}): ${(e as Error).message}` };
  }
}

/** Options of applying one saved plan run. */
export interface RemoteApplyOptions extends TerraformCloudCallOptions {
  /** The saved plan run to apply (its id) and its page. */
  readonly run: string;
  readonly url: string;
  /** Why it is applied, kept with the run in Terraform Cloud. */
  readonly comment: string;
}

/** The outcome of applying a saved plan run. */
export type RemoteApplyOutcome =
  | { readonly kind: 'applied' }
  /** The API refused (401, 403, 404): whether anything was applied is unknown. */
  | { readonly kind: 'cannot-tell'; readonly reason: string }
  /** The run cannot be applied or its apply failed (errored, canceled, discarded, not waiting for confirmation). */
  | { readonly kind: 'failed'; readonly reason: string };

/** Run states of a saved plan that waits for confirmation (run.mdx "Run States"). */
const AWAITS_CONFIRMATION = ['planned_and_saved', 'planned', 'cost_estimated', 'policy_checked'];

/**
 * Applies exactly one saved plan run (run.mdx: `POST /runs/:run_id/actions/apply`, 202 when the apply is queued,
 * 409 when the run is not paused for confirmation; then the run goes through `confirmed`, `apply_queued`,
 * `applying` to `applied`, or ends `errored`, `canceled`, `discarded`). Never throws.
 */
export async function applyInTerraformCloud(options: RemoteApplyOptions): Promise<RemoteApplyOutcome> {
  const { target, run, url } = options;
  const name = `workspace ${target.organization}/${target.workspace}`;
  const { call, pause } = apiClient(name, options);
  const status = async () =>
    String((await call(`reading run ${run}`, 'GET', `runs/${encodeURIComponent(run)}`)).data?.attributes?.status ?? '');
  try {
    const before = await status();
    if (RUN_FAILED[before]) throw new Failed(`Terraform Cloud run ${run} of ${name} ${RUN_FAILED[before]} (${url})`);
    if (!AWAITS_CONFIRMATION.includes(before))
      throw new Failed(
        `Terraform Cloud run ${run} of ${name} is ${before || 'without a status'}, not a saved plan waiting for confirmation (${url})`,
      );
    options.progress?.(`confirming run ${run}`);
    await call(`applying run ${run}`, 'POST', `runs/${encodeURIComponent(run)}/actions/apply`, {
      comment: options.comment,
    });
    for (;;) {
      const now = await status();
      if (now === 'applied') return { kind: 'applied' };
      if (RUN_FAILED[now]) throw new Failed(`Terraform Cloud run ${run} of ${name} ${RUN_FAILED[now]} (${url})`);
      await pause(`the apply of run ${run} (${now || 'no status'})`);
    }
  } catch (e) {
    if (e instanceof CannotTell) return { kind: 'cannot-tell', reason: `${e.message} (${url})` };
    if (e instanceof Failed) return { kind: 'failed', reason: e.message };
    return { kind: 'failed', reason: `Terraform Cloud (${target.hostname}): ${(e as Error).message} (${url})` };
  }
}

/** The titles and details of a JSON:API error document, or the text itself (short). */
function errorDetail(text: string): string {
  try {
    const errors = (JSON.parse(text) as { errors?: { title?: string; detail?: string }[] }).errors ?? [];
    if (errors.length > 0) return errors.map((e) => [e.title, e.detail].filter(Boolean).join(': ')).join('; ');
  } catch {
    // not JSON
  }
  return text.trim().slice(0, 200);
}
