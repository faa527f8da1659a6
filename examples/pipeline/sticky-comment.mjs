#!/usr/bin/env node
// Posts a meshform plan comment on a pull request, or updates the one posted before: the comment whose first
// line is the same marker (`<!-- meshform-plan -->`, the first line of `meshform plan --markdown`). One comment
// per pull request, always the latest plan.
//
//   node sticky-comment.mjs meshform-plan.md
//
// Environment (GitHub Actions sets the first three): GITHUB_API_URL, GITHUB_REPOSITORY (owner/name),
// GITHUB_TOKEN (may write pull-request comments), PR_NUMBER.
// GitHub REST API: GET and POST /repos/{owner}/{repo}/issues/{number}/comments, PATCH
// /repos/{owner}/{repo}/issues/comments/{id} (a pull request's conversation comments are issue comments).
import { readFileSync } from 'node:fs';

const fail = (message) => {
  process.stderr.write(`sticky-comment: ${message}\n`);
  process.exit(1);
};
const [file] = process.argv.slice(2);
if (!file) fail('usage: sticky-comment.mjs <comment.md>');
const body = readFileSync(file, 'utf8');
const marker = body.split('\n', 1)[0];
if (!/^<!-- meshform-plan.* -->$/.test(marker)) fail(`${file} does not start with the meshform plan marker`);
const { GITHUB_API_URL = 'https://api.github.com', GITHUB_REPOSITORY, GITHUB_TOKEN, PR_NUMBER } = process.env;
if (!GITHUB_REPOSITORY || !GITHUB_TOKEN || !PR_NUMBER) fail('set GITHUB_REPOSITORY, GITHUB_TOKEN and PR_NUMBER');

const headers = {
  Accept: 'application/vnd.github+json',
  Authorization: `Bearer ${GITHUB_TOKEN}`,
  'X-GitHub-Api-Version': '2022-11-28',
};
async function call(method, resource, payload) {
  const response = await fetch(`${GITHUB_API_URL}/repos/${GITHUB_REPOSITORY}/${resource}`, {
    method,
    headers: payload ? { ...headers, 'Content-Type': 'application/json' } : headers,
    ...(payload ? { body: JSON.stringify(payload) } : {}),
  });
  if (!response.ok) fail(`${method} ${resource}: HTTP ${response.status} ${await response.text()}`);
  return response.json();
}

let previous;
for (let page = 1; !previous; page++) {
  const comments = await call('GET', `issues/${PR_NUMBER}/comments?per_page=100&page=${page}`);
  previous = comments.find((c) => typeof c.body === 'string' && c.body.split('\n', 1)[0] === marker);
  if (comments.length < 100) break;
}
if (previous) {
  await call('PATCH', `issues/comments/${previous.id}`, { body });
  process.stdout.write(`updated comment ${previous.id} on pull request ${PR_NUMBER}\n`);
} else {
  const created = await call('POST', `issues/${PR_NUMBER}/comments`, { body });
  process.stdout.write(`posted comment ${created.id} on pull request ${PR_NUMBER}\n`);
}
