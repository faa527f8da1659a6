/**
 * A stand-in for Terraform Cloud's API-driven run workflow on 127.0.0.1, as its API reference describes it
 * (hashicorp/terraform-docs-common, website/docs/cloud-docs/api-docs/: configuration-versions.mdx, run.mdx,
 * plans.mdx; run states from hashicorp/go-tfe run.go):
 *
 * - `GET /api/v2/organizations/:org/workspaces/:name`: the workspace, its `execution-mode` and permissions;
 * - `POST /api/v2/workspaces/:id/configuration-versions`: a `pending` configuration version with an `upload-url`
 *   on another origin (the "archivist", which takes no token);
 * - `PUT <upload-url>` (application/octet-stream): the .tar.gz, after which the version reads `uploaded`;
 * - `POST /api/v2/runs`, `GET /api/v2/runs/:id`: a run that moves one state per read, pending → plan_queued →
 *   planning → planned_and_finished (plan-only) or planned_and_saved (save-plan);
 * - `GET /api/v2/plans/:id/json-output`: 204 on the first read (not ready), then 307 to the archivist, which
 *   serves the plan JSON given for the workspace;
 * - `POST /api/v2/runs/:id/actions/apply` (run.mdx "Apply a Run"): 202 for a saved plan run waiting for
 *   confirmation (409 otherwise), after which the run moves one state per read, confirmed → apply_queued →
 *   applying → applied (or errored, for a workspace listed in `applyErrors`).
 *
 * It answers 404 for a wrong token or an unknown workspace ("not found, or unauthorized"), and the status a
 * test asks for at one step (`refuse`).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFileSync } from 'node:child_process';

/** A workspace of the stand-in: the plan JSON a run in it produces. */
export interface StandInWorkspace {
  readonly plan: unknown;
  /** Default `remote`. */
  readonly executionMode?: 'remote' | 'local' | 'agent';
}

/** The steps a test can make the API refuse. */
export type StandInStep = 'workspace' | 'configuration-version' | 'run' | 'json-output' | 'apply';

/** What the stand-in saw. */
export interface StandInRecord {
  /** Every request: `METHOD path Authorization` (the archivist's too). */
  readonly requests: string[];
  /** Configuration versions created: their attributes and the files of the uploaded .tar.gz. */
  readonly configurationVersions: { workspace: string; attributes: Record<string, unknown>; files?: string[] }[];
  /** Runs created: their attributes and the statuses they went through. */
  readonly runs: { workspace: string; attributes: Record<string, unknown>; statuses: string[] }[];
  /** The uploaded archives, by configuration version id. */
  readonly uploads: Map<string, Buffer>;
  /** Runs confirmed (apply action), in order: their workspace, run id and the comment sent. */
  readonly applies: { workspace: string; run: string; comment?: string }[];
}

export interface TerraformCloudPlanStandIn {
  readonly base: string;
  readonly record: StandInRecord;
  close(): Promise<void>;
}

/** Starts the stand-in with `workspaces` (by name) of organization `organization`, accepting `token`. */
export async function terraformCloudPlanStandIn(options: {
  organization: string;
  token: string;
  workspaces: { [name: string]: StandInWorkspace };
  refuse?: { step: StandInStep; status: 401 | 403 | 404 };
  /** Workspaces whose applies end `errored`. */
  applyErrors?: string[];
}): Promise<TerraformCloudPlanStandIn> {
  const record: StandInRecord = { requests: [], configurationVersions: [], runs: [], uploads: new Map(), applies: [] };
  const ids = new Map(Object.keys(options.workspaces).map((name, i) => [`ws-${i}`, name]));
  const cvs = new Map<string, { workspace: string; status: string; uploaded: boolean }>();
  const runs = new Map<
    string,
    { workspace: string; save: boolean; step: number; statuses: string[]; applyStep?: number }
  >();
  let archivistBase = '';
  let count = 0;
  const jsonReads = new Map<string, number>();

  const archivist = http.createServer((req, res) => {
    record.requests.push(`${req.method} archivist${req.url} ${req.headers.authorization ?? '-'}`);
    const upload = req.url?.match(/^\/upload\/(cv-\d+)$/);
    const planJson = req.url?.match(/^\/plan\/(run-\d+)$/);
    if (req.method === 'PUT' && upload && cvs.has(upload[1]!)) {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        record.uploads.set(upload[1]!, body);
        const cv = cvs.get(upload[1]!)!;
        cv.uploaded = true;
        const files = execFileSync('tar', ['-tzf', '-'], { input: body }).toString().trim().split('\n').sort();
        record.configurationVersions.find((c) => c.attributes.id === upload[1])!.files = files;
        res.statusCode = 200;
        res.end();
      });
      return;
    }
    if (req.method === 'GET' && planJson && runs.has(planJson[1]!)) {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify(options.workspaces[runs.get(planJson[1]!)!.workspace]!.plan));
      return;
    }
    res.statusCode = 404;
    res.end();
  });

  const api = http.createServer((req, res) => {
    record.requests.push(`${req.method} ${req.url} ${req.headers.authorization ?? '-'}`);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.setHeader('Content-Type', 'application/vnd.api+json');
      const send = (status: number, body?: unknown) => {
        res.statusCode = status;
        res.end(body === undefined ? undefined : JSON.stringify(body));
      };
      const notFound = () => send(404, { errors: [{ status: '404', title: 'not found' }] });
      const refused = (step: StandInStep) =>
        options.refuse?.step === step
          ? (send(options.refuse.status, { errors: [{ status: String(options.refuse.status), title: 'refused' }] }),
            true)
          : false;
      if (req.headers.authorization !== `Bearer ${options.token}`) return notFound();
      const body = chunks.length > 0 ? (JSON.parse(Buffer.concat(chunks).toString()) as { data: any }) : undefined;
      const url = req.url ?? '';
      let m: RegExpMatchArray | null;
      if (
        req.method === 'GET' &&
        (m = url.match(/^\/api\/v2\/organizations\/([^/]+)\/workspaces\/([^/]+)$/)) &&
        decodeURIComponent(m[1]!) === options.organization
      ) {
        if (refused('workspace')) return;
        const name = decodeURIComponent(m[2]!);
        const ws = options.workspaces[name];
        if (!ws) return notFound();
        const id = [...ids].find(([, n]) => n === name)![0];
        return send(200, {
          data: {
            id,
            type: 'workspaces',
            attributes: {
              name,
              'execution-mode': ws.executionMode ?? 'remote',
              permissions: { 'can-queue-run': true },
            },
            // it has a state, which this token may not read (its endpoints answer 404): never "no state"
            relationships: { 'current-state-version': { data: { id: `sv-${id}`, type: 'state-versions' } } },
          },
        });
      }
      if (req.method === 'POST' && (m = url.match(/^\/api\/v2\/workspaces\/(ws-\d+)\/configuration-versions$/))) {
        if (refused('configuration-version')) return;
        const workspace = ids.get(m[1]!);
        if (!workspace || body?.data?.type !== 'configuration-versions') return notFound();
        const id = `cv-${++count}`;
        cvs.set(id, { workspace, status: 'pending', uploaded: false });
        record.configurationVersions.push({ workspace, attributes: { id, ...body.data.attributes } });
        return send(201, {
          data: {
            id,
            type: 'configuration-versions',
            attributes: { status: 'pending', 'upload-url': `${archivistBase}/upload/${id}`, ...body.data.attributes },
          },
        });
      }
      if (req.method === 'GET' && (m = url.match(/^\/api\/v2\/configuration-versions\/(cv-\d+)$/))) {
        const cv = cvs.get(m[1]!);
        if (!cv) return notFound();
        // the upload is processed by the time it is read again
        if (cv.uploaded) cv.status = 'uploaded';
        return send(200, { data: { id: m[1], type: 'configuration-versions', attributes: { status: cv.status } } });
      }
      if (req.method === 'POST' && url === '/api/v2/runs') {
        if (refused('run')) return;
        const wsId = body?.data?.relationships?.workspace?.data?.id as string | undefined;
        const cvId = body?.data?.relationships?.['configuration-version']?.data?.id as string | undefined;
        const workspace = wsId ? ids.get(wsId) : undefined;
        if (!workspace || !cvId || cvs.get(cvId)?.status !== 'uploaded' || cvs.get(cvId)?.workspace !== workspace)
          return send(422, { errors: [{ status: '422', title: 'invalid configuration version' }] });
        const id = `run-${++count}`;
        const statuses = ['pending'];
        runs.set(id, { workspace, save: body!.data.attributes['save-plan'] === true, step: 0, statuses });
        record.runs.push({ workspace, attributes: body!.data.attributes, statuses });
        return send(201, { data: { id, type: 'runs', attributes: { status: 'pending' } } });
      }
      if (req.method === 'GET' && (m = url.match(/^\/api\/v2\/runs\/(run-\d+)$/))) {
        const run = runs.get(m[1]!);
        if (!run) return notFound();
        const states = ['pending', 'plan_queued', 'planning', run.save ? 'planned_and_saved' : 'planned_and_finished'];
        const applying = ['confirmed', 'apply_queued', 'applying'];
        const applied = options.applyErrors?.includes(run.workspace) ? 'errored' : 'applied';
        const status =
          run.applyStep === undefined
            ? states[Math.min(run.step++, states.length - 1)]!
            : [...applying, applied][Math.min(run.applyStep++, applying.length)]!;
        if (run.statuses[run.statuses.length - 1] !== status) run.statuses.push(status);
        return send(200, {
          data: {
            id: m[1],
            type: 'runs',
            attributes: { status },
            relationships: { plan: { data: { id: `plan-${m[1]!.slice(4)}`, type: 'plans' } } },
          },
        });
      }
      if (req.method === 'POST' && (m = url.match(/^\/api\/v2\/runs\/(run-\d+)\/actions\/apply$/))) {
        if (refused('apply')) return;
        const run = runs.get(m[1]!);
        if (!run) return notFound();
        // only a saved plan run waiting for confirmation can be applied, once
        if (run.statuses[run.statuses.length - 1] !== 'planned_and_saved' || run.applyStep !== undefined)
          return send(409, { errors: [{ status: '409', title: 'transition not allowed' }] });
        run.applyStep = 0;
        record.applies.push({
          workspace: run.workspace,
          run: m[1]!,
          ...(typeof (body as { comment?: unknown } | undefined)?.comment === 'string'
            ? { comment: (body as unknown as { comment: string }).comment }
            : {}),
        });
        return send(202);
      }
      if (req.method === 'GET' && (m = url.match(/^\/api\/v2\/plans\/plan-(\d+)\/json-output$/))) {
        if (refused('json-output')) return;
        const runId = `run-${m[1]}`;
        if (!runs.has(runId)) return notFound();
        const reads = (jsonReads.get(runId) ?? 0) + 1;
        jsonReads.set(runId, reads);
        if (reads === 1) return send(204);
        res.setHeader('Location', `${archivistBase}/plan/${runId}`);
        return send(307);
      }
      return notFound();
    });
  });

  await new Promise<void>((r) => archivist.listen(0, '127.0.0.1', r));
  archivistBase = `http://127.0.0.1:${(archivist.address() as AddressInfo).port}`;
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${(api.address() as AddressInfo).port}`,
    record,
    close: async () => {
      api.closeAllConnections();
      archivist.closeAllConnections();
      await Promise.all([new Promise((r) => api.close(r)), new Promise((r) => archivist.close(r))]);
    },
  };
}
