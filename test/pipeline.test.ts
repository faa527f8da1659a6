/**
 * The pull-request workflow of examples/pipeline, run step by step here: its YAML parses and calls real commands
 * of ours; `pipeline.sh plan` synthesizes, plans with --markdown and keeps one sticky comment on the pull request
 * (a stand-in for GitHub's REST API on 127.0.0.1), and fails the check on a blocked gate; `pipeline.sh apply`
 * deploys the stacks in dependency order. The comment is checked with a Markdown parser (markdown-it): the
 * marker, balanced `<details>` blocks with a summary each, the tables, the Mermaid block (its lines checked
 * against the flowchart subset meshform writes).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import MarkdownIt from 'markdown-it';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PLAN_COMMENT_MARKER } from '../cli/plan-markdown';
import { terraformAvailability } from '../cli/terraform';
import { planProject } from './plan-support';
import { project, REPO, tempDir } from './support';

const available = terraformAvailability({ offline: true });
const PIPELINE = path.join(REPO, 'examples', 'pipeline');
const MESHFORM = `node ${path.join(REPO, 'bin', 'meshform.js')}`;
const markdown = new MarkdownIt({ html: true });

/** A stand-in for GitHub's issue comments API: what a pull request's conversation holds. */
async function githubStandIn(): Promise<{
  url: string;
  comments: { id: number; body: string }[];
  calls: string[];
  close(): Promise<void>;
}> {
  const comments: { id: number; body: string }[] = [{ id: 1, body: 'Looks good, one question below.' }];
  const calls: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      calls.push(`${req.method} ${req.url?.replace(/\?.*/, '')}`);
      res.setHeader('Content-Type', 'application/json');
      const send = (status: number, body: unknown) => ((res.statusCode = status), res.end(JSON.stringify(body)));
      if (req.headers.authorization !== 'Bearer gh-token') return send(401, { message: 'Bad credentials' });
      const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString()) as { body: string }) : undefined;
      if (req.url?.startsWith('/repos/acme/shop/issues/7/comments')) {
        if (req.method === 'GET') return send(200, comments);
        if (req.method === 'POST') {
          const c = { id: comments.length + 100, body: body!.body };
          comments.push(c);
          return send(201, c);
        }
      }
      const patch = req.url?.match(/^\/repos\/acme\/shop\/issues\/comments\/(\d+)$/);
      if (req.method === 'PATCH' && patch) {
        const c = comments.find((x) => x.id === Number(patch[1]));
        if (!c) return send(404, { message: 'Not Found' });
        c.body = body!.body;
        return send(200, c);
      }
      return send(404, { message: 'Not Found' });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    comments,
    calls,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** Runs one step of pipeline.sh in `cwd` (asynchronously: the stand-in answers from this process). */
function step(
  name: 'plan' | 'apply',
  cwd: string,
  env: { [name: string]: string },
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', [path.join(PIPELINE, 'pipeline.sh'), name], {
      cwd,
      env: { ...process.env, MESHFORM, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

let github: Awaited<ReturnType<typeof githubStandIn>> | undefined;
afterEach(async () => {
  await github?.close();
  github = undefined;
});

/** The environment GitHub Actions gives the plan step of pull request 7 of acme/shop. */
function pullRequest(url: string): { [name: string]: string } {
  return { GITHUB_API_URL: url, GITHUB_REPOSITORY: 'acme/shop', GITHUB_TOKEN: 'gh-token', PR_NUMBER: '7' };
}

/** The Mermaid flowchart subset meshform writes: every line one of these. */
const MERMAID_LINE = [
  /^graph LR$/,
  /^ {2}subgraph (\w+)\["[^"]*"\]$/,
  /^ {2}end$/,
  /^ {4}(\w+)\["[^"]*"\]$/,
  /^ {4}(\w+)\(\["[^"]*"\]\)$/,
  /^ {4}(\w+) --- (\w+)$/,
  /^ {2}(\w+)\["[^"]*"\]$/,
  /^ {2}(\w+) -->\|"[^"]*"\| (\w+)$/,
  /^ {2}(\w+) -\.-\|"[^"]*"\| (\w+)$/,
  /^ {2}classDef \w+ [\w#:,.-]+(,[\w#:,.-]+)*$/,
  /^ {2}class [\w,]+ \w+$/,
];

/** Checks a Mermaid text against that subset: known lines, subgraphs closed, every edge between declared nodes. */
function checkMermaid(text: string): { nodes: Set<string>; edges: string[] } {
  const nodes = new Set<string>();
  const edges: string[] = [];
  let depth = 0;
  for (const line of text.split('\n')) {
    const match = MERMAID_LINE.map((re) => line.match(re)).find(Boolean);
    expect(match, `a Mermaid line meshform does not write: ${line}`).toBeTruthy();
    if (line.startsWith('  subgraph ')) depth++;
    if (line === '  end') depth--;
    expect(depth).toBeGreaterThanOrEqual(0);
    if (/\["|\(\["/.test(line)) nodes.add(match![1]!);
    else if (/ --- | -->\|| -\.-\|/.test(line)) edges.push(`${match![1]} ${match![2]}`);
    // a label never holds a raw quote or angle bracket other than the line break
    for (const label of line.match(/"[^"]*"/g) ?? []) expect(label.replace(/<br\/>/g, '')).not.toMatch(/[<>]/);
  }
  expect(depth).toBe(0);
  for (const e of edges) for (const id of e.split(' ')) expect(nodes, `edge to an undeclared node ${id}`).toContain(id);
  return { nodes, edges };
}

/** The structure of a plan comment, read with markdown-it. */
function structure(comment: string) {
  const tokens = markdown.parse(comment, {});
  const html = tokens.filter((t) => t.type === 'html_block').map((t) => t.content);
  let depth = 0;
  const summaries: string[] = [];
  for (const block of html) {
    for (const tag of block.match(/<\/?details>/g) ?? []) {
      depth += tag === '<details>' ? 1 : -1;
      expect(depth).toBeGreaterThanOrEqual(0);
      expect(depth).toBeLessThanOrEqual(1);
    }
    if (block.startsWith('<details>')) {
      // the summary is inside the same HTML block, right after the opening tag, and closed on its line
      const summary = block.match(/^<details>\n<summary>(.*)<\/summary>\n$/);
      expect(summary, block).toBeTruthy();
      summaries.push(summary![1]!);
    }
  }
  expect(depth).toBe(0);
  const tables: string[][][] = [];
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i]!.type !== 'table_open') continue;
    const rows: string[][] = [];
    let row: string[] = [];
    for (i++; tokens[i]!.type !== 'table_close'; i++) {
      const t = tokens[i]!;
      if (t.type === 'tr_open') row = [];
      if (t.type === 'inline') row.push(t.content);
      if (t.type === 'tr_close') rows.push(row);
    }
    tables.push(rows);
  }
  const mermaid = tokens.filter((t) => t.type === 'fence' && t.info === 'mermaid').map((t) => t.content.trimEnd());
  return { first: tokens[0]!, summaries, tables, mermaid, headings: headings(tokens) };
}

function headings(tokens: ReturnType<typeof markdown.parse>): string[] {
  return tokens.flatMap((t, i) => (t.type === 'heading_open' ? [`${t.tag} ${tokens[i + 1]!.content}`] : []));
}

describe('the pull-request workflow (examples/pipeline)', () => {
  it('the workflow parses, runs on pull requests and on main, and its steps call real commands of ours', () => {
    const workflow = parse(fs.readFileSync(path.join(PIPELINE, 'meshform.yml'), 'utf8')) as {
      on: { pull_request: unknown; push: { branches: string[] } };
      jobs: {
        [job: string]: {
          if: string;
          permissions: { [p: string]: string };
          steps: { uses?: string; run?: string; with?: { [k: string]: unknown } }[];
        };
      };
    };
    expect(Object.keys(workflow.on)).toEqual(['pull_request', 'push', 'workflow_dispatch']);
    expect(workflow.on.push.branches).toEqual(['main']);
    expect(workflow.jobs.plan!.if).toBe("github.event_name == 'pull_request'");
    expect(workflow.jobs.plan!.permissions['pull-requests']).toBe('write');
    expect(workflow.jobs.apply!.if).toContain("github.ref == 'refs/heads/main'");
    const runs = (job: string) => workflow.jobs[job]!.steps.flatMap((s) => (s.run ? [s.run] : []));
    expect(runs('plan')).toEqual(['npm ci', 'bash examples/pipeline/pipeline.sh plan']);
    expect(runs('apply')).toEqual(['npm ci', 'bash examples/pipeline/pipeline.sh apply']);
    // every action is pinned to a major version; Terraform is the version this project is tested with
    for (const job of Object.values(workflow.jobs))
      for (const s of job.steps.filter((s) => s.uses)) expect(s.uses).toMatch(/^[\w-]+\/[\w-]+@v\d+$/);
    const terraform = workflow.jobs.plan!.steps.find((s) => s.uses?.startsWith('hashicorp/setup-terraform'))!;
    if (available.ok) expect(terraform.with!.terraform_version).toBe(available.env.version);
    expect(terraform.with!.terraform_wrapper).toBe(false);
    // the script's meshform command lines exist, with the options it passes
    const script = fs.readFileSync(path.join(PIPELINE, 'pipeline.sh'), 'utf8');
    const lines = [...script.matchAll(/"\$\{meshform\[@\]\}" (\w+)([^\n>]*)/g)].map((m) => ({
      command: m[1]!,
      options: [...m[2]!.matchAll(/--[\w-]+/g)].map((o) => o[0]),
    }));
    expect(lines.map((l) => `${l.command} ${l.options.join(' ')}`.trim())).toEqual([
      'synth',
      'plan --markdown',
      'deploy --auto-approve',
    ]);
    for (const { command, options } of lines) {
      const help = spawnSync('node', [path.join(REPO, 'bin', 'meshform.js'), command, '--help'], { encoding: 'utf8' });
      expect(help.status).toBe(0);
      for (const o of [...options, ...(command === 'synth' ? [] : ['--allow'])]) expect(help.stdout).toContain(o);
    }
  });

  it.skipIf(!available.ok)(
    'plan step on the default example: one sticky comment, updated in place, that renders as intended',
    async () => {
      // GIVEN the default example and a pull request with a reviewer's comment
      const dir = project(path.join(REPO, 'examples', 'default', 'main.ts'));
      github = await githubStandIn();
      // WHEN the plan step runs (offline here: no cloud credentials in the test)
      const first = await step('plan', dir, { ...pullRequest(github.url), MESHFORM_PLAN_FLAGS: '--offline' });
      // THEN the check passes and the pull request has one meshform comment, the plan
      expect(first.stderr).not.toContain('sticky-comment:');
      expect(first.code).toBe(0);
      expect(first.stdout).toContain('posted comment 101 on pull request 7');
      const comment = github.comments.find((c) => c.body.startsWith(PLAN_COMMENT_MARKER))!;
      expect(comment.body).toBe(fs.readFileSync(path.join(dir, 'meshform-plan.md'), 'utf8'));
      // AND a second run updates that comment instead of adding one
      const second = await step('plan', dir, { ...pullRequest(github.url), MESHFORM_PLAN_FLAGS: '--offline' });
      expect(second.code).toBe(0);
      expect(second.stdout).toContain('updated comment 101 on pull request 7');
      expect(github.comments.map((c) => c.id)).toEqual([1, 101]);
      expect(github.calls.filter((c) => c !== 'GET /repos/acme/shop/issues/7/comments')).toEqual([
        'POST /repos/acme/shop/issues/7/comments',
        'PATCH /repos/acme/shop/issues/comments/101',
      ]);

      // (MESHFORM_PLAN_HTML=<file> keeps the comment rendered to HTML, to look at)
      const html = markdown.render(comment.body);
      const where = process.env.MESHFORM_PLAN_HTML ?? path.join(tempDir(), 'plan.html');
      fs.writeFileSync(where, html);
      fs.writeFileSync(`${where}.md`, comment.body);

      // AND the Markdown has the intended structure
      const s = structure(comment.body);
      expect(s.first.type).toBe('html_block');
      expect(s.first.content.trim()).toBe(PLAN_COMMENT_MARKER);
      expect(s.headings).toEqual(['h2 meshform plan: 📝 changes to apply', 'h3 Gates', 'h3 Mesh `shop`', 'h3 Stacks']);
      // one collapsed block per stack, in dependency order, with its counts in the summary
      expect(s.summaries.map((x) => x.replace(/ — .*/, ''))).toEqual([
        '<code>shop-aws-us-east-infra</code>',
        '<code>shop-aws-us-east</code>',
        '<code>shop-aws-us-east-config</code>',
        '<code>shop-aws-vms</code>',
        '<code>shop-gcp-europe-west</code>',
      ]);
      const planned = s.summaries.filter((x) => / — \d+ to create/.test(x));
      expect(planned.length).toBe(2); // the AWS-only stacks; the others need providers not in the offline mirror
      // each planned stack's table lists its resource changes (up to 60), as many as its summary counts
      const resourceTables = s.tables.filter((t) => t[0]!.join('|') === '|resource|construct|why');
      expect(resourceTables.length).toBe(2);
      planned.forEach((summary, i) => {
        const total = [...summary.matchAll(/(\d+) to /g)].reduce((n, m) => n + Number(m[1]), 0);
        expect(resourceTables[i]!.length - 1).toBe(Math.min(total, 60));
        expect(
          resourceTables[i]!.slice(1).every((r) => /^(➕|✏️|±|➖) (create|update|replace|delete)$/.test(r[0]!)),
        ).toBe(true);
      });
      // the mesh changes as a table, no gate
      expect(comment.body).toContain('### Gates\n\nNo gate fired.');
      const changes = s.tables.find((t) => t[0]!.join('|') === '|change')!;
      expect(
        changes
          .slice(1)
          .map((r) => r[1])
          .filter((c) => c!.startsWith('datacenter ')),
      ).toEqual([
        'datacenter aws-us-east: kubernetes on aws, 3 servers, gateway mgw.aws-us-east.shop.example.com:443',
        'datacenter gcp-europe-west: kubernetes on gcp, 3 servers',
        'datacenter aws-vms: vm on aws, 3 servers, gateway mgw.aws-vms.shop.example.com:443',
      ]);
      // the topology: one Mermaid flowchart, three datacenters, the secondaries federated to the primary
      expect(s.mermaid.length).toBe(1);
      const graph = checkMermaid(s.mermaid[0]!);
      expect([...graph.nodes].filter((n) => !/_(servers|gateway)$/.test(n)).sort()).toEqual([
        'dc_aws_us_east',
        'dc_aws_vms',
        'dc_gcp_europe_west',
      ]);
      expect(graph.edges.filter((e) => !e.includes('_servers'))).toEqual([
        'dc_gcp_europe_west_gateway dc_aws_us_east_gateway',
        'dc_aws_vms_gateway dc_aws_us_east_gateway',
      ]);
      expect(s.mermaid[0]).toContain('subgraph dc_aws_us_east["aws-us-east (primary)"]');
      expect(s.mermaid[0]).toContain('class dc_aws_us_east primary');
      expect(s.mermaid[0]).toContain('class dc_aws_us_east,dc_gcp_europe_west,dc_aws_vms added');
      // AND rendered to HTML: collapsed blocks, tables, the diagram as a mermaid code block
      expect(html.match(/<details>/g)!.length).toBe(5);
      expect(html.match(/<summary>/g)!.length).toBe(5);
      expect(html).toContain('<pre><code class="language-mermaid">graph LR');
      // a command in a code span keeps its angle brackets as typed (escaped once, by the renderer)
      expect(html).toContain('<code>terraform providers mirror &lt;dir&gt;</code>');
      expect(html.match(/<table>/g)!.length).toBe(1 + 2); // the mesh changes, two stacks
    },
    600_000,
  );

  it('plan step with a blocked gate: the check fails (exit 3), the comment says which gate and how to go ahead', async () => {
    // GIVEN a mesh applied with 3 servers in west, and a pull request that takes west to 1
    const p = planProject();
    await p.plan('--json', '--no-terraform');
    p.markApplied();
    p.set({ westServers: 1 });
    github = await githubStandIn();
    const env = { ...pullRequest(github.url), MESHFORM_PLAN_FLAGS: '--offline', MESHFORM_SECRETS_DIR: p.store };
    // WHEN the plan step runs
    const blocked = await step('plan', p.dir, env);
    // THEN it fails the check, and the comment's gates table holds the gate
    expect(blocked.code).toBe(3);
    expect(blocked.stderr).toContain('meshform plan: a gate blocked (exit 3)');
    const body = github.comments.find((c) => c.body.startsWith(PLAN_COMMENT_MARKER))!.body;
    const s = structure(body);
    expect(s.headings[0]).toBe('h2 meshform plan: ⛔ 1 gate blocked');
    const gates = s.tables.find((t) => t[0]!.join('|') === '|gate|mesh|subject|why, and how to go ahead')!;
    expect(gates.slice(1).map((r) => r.slice(0, 4))).toEqual([
      ['⛔ **blocked**', '`server-quorum`', 'shop', 'servers of west'],
    ]);
    expect(gates[1]![4]).toMatch(/Go ahead with `--allow server-quorum`\.$/);
    checkMermaid(s.mermaid[0]!);
    expect(s.mermaid[0]).toContain('class dc_west changed');
    // AND acknowledged for the run (MESHFORM_ALLOW), the check passes and the same comment says so
    const allowed = await step('plan', p.dir, { ...env, MESHFORM_ALLOW: 'server-quorum' });
    expect(allowed.code).toBe(0);
    const after = github.comments.filter((c) => c.body.startsWith(PLAN_COMMENT_MARKER));
    expect(after.length).toBe(1);
    expect(structure(after[0]!.body).tables.find((t) => t[0]![1] === 'gate')![1]![0]).toBe('⚠️ acknowledged');
  });

  it.skipIf(!available.ok)(
    'apply step on merge: meshform deploy applies every stack after what it depends on',
    async () => {
      // GIVEN a mesh whose stacks real Terraform applies here (east primary, west), never applied
      const p = planProject({}, { applyable: true });
      // WHEN the apply step runs
      const applied = await step('apply', p.dir, { MESHFORM_SECRETS_DIR: p.store });
      // THEN every stack is applied, each after the stacks it depends on (cdktf's manifest)
      expect(applied.code).toBe(0);
      const order = [...applied.stdout.matchAll(/^(\S+): applied$/gm)].map((m) => m[1]!);
      const manifest = JSON.parse(fs.readFileSync(path.join(p.dir, 'cdktf.out', 'manifest.json'), 'utf8')) as {
        stacks: { [name: string]: { dependencies: string[] } };
      };
      expect([...order].sort()).toEqual(Object.keys(manifest.stacks).sort());
      for (const [name, stack] of Object.entries(manifest.stacks))
        for (const dep of stack.dependencies) expect(order.indexOf(dep)).toBeLessThan(order.indexOf(name));
      expect(Object.values(manifest.stacks).some((s) => s.dependencies.length > 0)).toBe(true);
      // AND a second merge with nothing new applies nothing
      const again = await step('apply', p.dir, { MESHFORM_SECRETS_DIR: p.store });
      expect(again.code).toBe(0);
      expect(again.stdout).toContain('nothing to apply: every stack is up to date');
    },
  );
});
