/**
 * A stand-in Terraform Cloud API on 127.0.0.1, for the endpoints meshform calls (see
 * constructs/private/terraform-cloud-api.ts): workspaces by name, variable sets of an organization, and the
 * variables of a workspace (`/workspaces/:id/vars`) or variable set (`/varsets/:id/relationships/vars`).
 * As the real API: a bearer token is required (401 `unauthorized` without the right one), JSON:API bodies
 * (`application/vnd.api+json`, else 415), an unknown organization, workspace or variable set is 404, a second
 * variable with the same key and category is 422, and a sensitive variable's value is never returned (null).
 *
 * Run with `startTfcStandin()` (its own process: test/standin-process.ts); `GET /__standin/state` (tests only,
 * no token) returns everything, values included, so a test can check what was written.
 */
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import { readBody, StandinProcess, startStandin } from './standin-process';

/** What the stand-in serves. */
export interface TfcStandinConfig {
  readonly token: string;
  readonly organization: string;
  readonly workspaces?: readonly string[];
  readonly variableSets?: readonly string[];
}

/** A variable as the stand-in keeps it. */
export interface StandinVariable {
  readonly id: string;
  key: string;
  value: string;
  description: string;
  category: string;
  sensitive: boolean;
  hcl: boolean;
}

/** The stand-in's state. */
export interface TfcStandinState {
  /** Variables by owner: `workspace:<name>` or `varset:<name>`. */
  readonly variables: { [owner: string]: StandinVariable[] };
  /** Every request: method, path, status. */
  readonly requests: { method: string; path: string; status: number }[];
}

/** Starts the stand-in in its own process. */
export function startTfcStandin(config: TfcStandinConfig): Promise<StandinProcess> {
  return startStandin('tfc-standin.ts', config);
}

function serve(config: TfcStandinConfig): void {
  const workspaces = new Map(
    (config.workspaces ?? []).map((name, i) => [`ws-${i + 1}${randomBytes(4).toString('hex')}`, name]),
  );
  const varsets = new Map(
    (config.variableSets ?? []).map((name, i) => [`varset-${i + 1}${randomBytes(4).toString('hex')}`, name]),
  );
  const state: TfcStandinState = { variables: {}, requests: [] };
  const owned = (owner: string) => (state.variables[owner] ??= []);
  const shown = (v: StandinVariable) => ({
    id: v.id,
    type: 'vars',
    attributes: {
      key: v.key,
      value: v.sensitive ? null : v.value,
      description: v.description,
      category: v.category,
      sensitive: v.sensitive,
      hcl: v.hcl,
    },
  });
  const errors = (status: number, title: string, detail?: string) => ({
    errors: [{ status: String(status), title, ...(detail ? { detail } : {}) }],
  });
  const paged = (data: unknown[]) => ({
    data,
    meta: {
      pagination: {
        'current-page': 1,
        'next-page': null,
        'prev-page': null,
        'total-pages': 1,
        'total-count': data.length,
      },
    },
  });

  const server = http.createServer(async (request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const body = await readBody(request);
    const send = (status: number, json?: unknown) => {
      if (url.pathname !== '/__standin/state')
        state.requests.push({ method: request.method ?? '', path: url.pathname, status });
      response.writeHead(status, { 'content-type': 'application/vnd.api+json' });
      response.end(json === undefined ? '' : JSON.stringify(json));
    };
    if (url.pathname === '/__standin/state') return send(200, state);
    if (request.headers.authorization !== `Bearer ${config.token}`) return send(401, errors(401, 'unauthorized'));
    if (
      (request.method === 'POST' || request.method === 'PATCH') &&
      request.headers['content-type'] !== 'application/vnd.api+json'
    )
      return send(415, errors(415, 'unsupported media type'));
    const parts = url.pathname
      .replace(/^\/api\/v2\//, '')
      .split('/')
      .map(decodeURIComponent);
    const org = parts[0] === 'organizations' ? parts[1] : undefined;
    if (org !== undefined && org !== config.organization) return send(404, errors(404, 'not found'));
    // GET /organizations/:org/workspaces/:name
    if (org && parts[2] === 'workspaces' && parts.length === 4 && request.method === 'GET') {
      const found = [...workspaces].find(([, name]) => name === parts[3]);
      return found
        ? send(200, { data: { id: found[0], type: 'workspaces', attributes: { name: found[1] } } })
        : send(404, errors(404, 'not found'));
    }
    // GET /organizations/:org/varsets
    if (org && parts[2] === 'varsets' && parts.length === 3 && request.method === 'GET')
      return send(
        200,
        paged([...varsets].map(([id, name]) => ({ id, type: 'varsets', attributes: { name, global: false } }))),
      );
    // the variables of a workspace or variable set
    let owner: string | undefined;
    let rest: string[] = [];
    if (parts[0] === 'workspaces' && parts[2] === 'vars' && workspaces.has(parts[1]!)) {
      owner = `workspace:${workspaces.get(parts[1]!)}`;
      rest = parts.slice(3);
    } else if (
      parts[0] === 'varsets' &&
      parts[2] === 'relationships' &&
      parts[3] === 'vars' &&
      varsets.has(parts[1]!)
    ) {
      owner = `varset:${varsets.get(parts[1]!)}`;
      rest = parts.slice(4);
    }
    if (!owner) return send(404, errors(404, 'not found'));
    const vars = owned(owner);
    if (rest.length === 0 && request.method === 'GET') return send(200, paged(vars.map(shown)));
    let input: { data?: { type?: string; attributes?: Partial<StandinVariable> } };
    try {
      input = body ? JSON.parse(body) : {};
    } catch {
      return send(400, errors(400, 'bad request', 'body is not JSON'));
    }
    const a = input.data?.attributes ?? {};
    if (rest.length === 0 && request.method === 'POST') {
      if (
        input.data?.type !== 'vars' ||
        typeof a.key !== 'string' ||
        (a.category !== 'terraform' && a.category !== 'env')
      )
        return send(422, errors(422, 'invalid attribute', 'key and category are required'));
      if (vars.some((v) => v.key === a.key && v.category === a.category))
        return send(422, errors(422, 'invalid attribute', 'Key has already been taken'));
      const v: StandinVariable = {
        id: `var-${randomBytes(8).toString('hex')}`,
        key: a.key,
        value: a.value ?? '',
        description: a.description ?? '',
        category: a.category,
        sensitive: a.sensitive === true,
        hcl: a.hcl === true,
      };
      vars.push(v);
      return send(201, { data: shown(v) });
    }
    const v = vars.find((x) => x.id === rest[0]);
    if (rest.length !== 1 || !v) return send(404, errors(404, 'not found'));
    if (request.method === 'PATCH') {
      if (v.sensitive && a.sensitive === false)
        return send(422, errors(422, 'invalid attribute', 'a sensitive variable cannot be made non-sensitive'));
      if (a.value !== undefined) v.value = a.value;
      if (a.description !== undefined) v.description = a.description;
      if (a.sensitive !== undefined) v.sensitive = a.sensitive;
      if (a.hcl !== undefined) v.hcl = a.hcl;
      return send(200, { data: shown(v) });
    }
    if (request.method === 'DELETE') {
      vars.splice(vars.indexOf(v), 1);
      return send(204);
    }
    return send(405, errors(405, 'method not allowed'));
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`listening on ${(server.address() as import('node:net').AddressInfo).port}\n`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

if (require.main === module) serve(JSON.parse(process.argv[2]!) as TfcStandinConfig);
