import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { REPO, run, tempDir } from './support';

/** The keys of the secrets document of a service host or gateway (no server material). */
export const AGENT_SECRETS_KEYS = ['ca_bundle', 'client_api_cert', 'client_api_key', 'format', 'gossip_key', 'tokens'];

/** The on-host agent script, as the hosts get it. */
export const NODE_SCRIPT = path.join(REPO, 'constructs', 'private', 'assets', 'meshform-node.py');

/** A config entry as Consul's API stores it. */
export interface Entry {
  Kind: string;
  Name: string;
  Meta?: { [key: string]: string };
}

/** An ACL policy as Consul's API returns it. */
export interface Policy {
  ID: string;
  Name: string;
  Description: string;
  Rules: string;
}

/** An ACL token as Consul's API returns it (policies by id and name). */
export interface Token {
  AccessorID: string;
  SecretID: string;
  Description: string;
  Local: boolean;
  Policies?: { ID?: string; Name: string }[];
  ServiceIdentities?: { ServiceName: string; Datacenters?: string[] }[];
}

/**
 * A stand-in for a server's Consul HTTP API on TLS (the datacenter's own server certificate, so the agent
 * verifies it with the CA bundle it installed) or a client agent's local API: leader status, service
 * registration, config entries, and ACL policies and tokens
 * with the endpoints and shapes of Consul's HTTP API (/v1/acl/policy, /v1/acl/policy/name/:name,
 * /v1/acl/policy/:id, /v1/acl/token, /v1/acl/token/:accessor). Only `tokens` may call the ACL endpoints.
 */
export class FakeConsul {
  public readonly requests: string[] = [];
  public readonly entries = new Map<string, Entry>();
  public readonly policies = new Map<string, Policy>();
  public readonly tokens = new Map<string, Token>();
  /** Services registered with the local agent's API. */
  public readonly registered: { Name: string }[] = [];
  private server?: https.Server;

  /** @param aclTokens secret ids allowed to read and write ACLs (none: anything goes) */
  constructor(
    private readonly tls: { chainPem: string; keyPem: string },
    private readonly aclTokens: readonly string[] = [],
  ) {}

  public start(): Promise<string> {
    this.server = https.createServer({ cert: this.tls.chainPem, key: this.tls.keyPem }, (req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const url = req.url ?? '';
        const token = req.headers['x-consul-token'];
        this.requests.push(`${req.method} ${url}${token ? '' : ' (no token)'}`);
        res.setHeader('Content-Type', 'application/json');
        const reply = (status: number, value: unknown) => {
          res.statusCode = status;
          res.end(typeof value === 'string' ? value : JSON.stringify(value));
        };
        if (url.startsWith('/v1/acl/') && this.aclTokens.length > 0 && !this.aclTokens.includes(String(token))) {
          return reply(403, 'Permission denied: token lacks acl:write');
        }
        const list = /^\/v1\/config\/([a-z-]+)$/.exec(url);
        const one = /^\/v1\/config\/([a-z-]+)\/([^/]+)$/.exec(url);
        const policyByName = /^\/v1\/acl\/policy\/name\/([^/]+)$/.exec(url);
        const policyById = /^\/v1\/acl\/policy\/([^/]+)$/.exec(url);
        const tokenById = /^\/v1\/acl\/token\/([^/]+)$/.exec(url);
        if (url === '/v1/status/leader') return reply(200, JSON.stringify('10.0.0.1:8300'));
        if (req.method === 'PUT' && url === '/v1/agent/service/register') {
          this.registered.push(JSON.parse(body) as { Name: string });
          return reply(200, '');
        }
        if (req.method === 'PUT' && url === '/v1/config') {
          const entry = JSON.parse(body) as Entry;
          this.entries.set(`${entry.Kind}/${entry.Name}`, entry);
          return reply(200, 'true');
        }
        if (req.method === 'GET' && list)
          return reply(
            200,
            [...this.entries.values()].filter((e) => e.Kind === list[1]),
          );
        if (req.method === 'DELETE' && one) {
          this.entries.delete(`${one[1]}/${decodeURIComponent(one[2]!)}`);
          return reply(200, 'true');
        }
        if (req.method === 'GET' && policyByName) {
          const found = [...this.policies.values()].find((p) => p.Name === decodeURIComponent(policyByName[1]!));
          return found ? reply(200, found) : reply(403, 'ACL not found');
        }
        if (req.method === 'PUT' && url === '/v1/acl/policy') {
          const policy = { ...(JSON.parse(body) as Policy), ID: randomUUID() };
          this.policies.set(policy.ID, policy);
          return reply(200, policy);
        }
        if (req.method === 'PUT' && policyById) {
          const update = JSON.parse(body) as Policy;
          if (!this.policies.has(policyById[1]!) || update.ID !== policyById[1]) return reply(400, 'bad policy id');
          this.policies.set(update.ID, update);
          return reply(200, update);
        }
        if (req.method === 'GET' && tokenById) {
          const found = this.tokens.get(tokenById[1]!);
          return found ? reply(200, found) : reply(403, 'ACL not found');
        }
        if (req.method === 'PUT' && url === '/v1/acl/token') {
          const created = JSON.parse(body) as Token;
          this.tokens.set(created.AccessorID, created);
          return reply(200, created);
        }
        if (req.method === 'PUT' && tokenById) {
          const current = this.tokens.get(tokenById[1]!);
          if (!current) return reply(403, 'ACL not found');
          // an update keeps the secret id (Consul refuses to change it)
          const updated = { ...(JSON.parse(body) as Token), SecretID: current.SecretID };
          this.tokens.set(current.AccessorID, updated);
          return reply(200, updated);
        }
        return reply(404, '{}');
      });
    });
    return new Promise((resolve) =>
      this.server!.listen(0, '127.0.0.1', () =>
        resolve(`https://127.0.0.1:${(this.server!.address() as AddressInfo).port}`),
      ),
    );
  }

  public stop(): void {
    this.server?.close();
  }
}

/** Runs meshform-node in a directory standing in for a host's root, without blocking the event loop. */
export function runNode(
  root: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ status: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('python3', [NODE_SCRIPT, ...args], { env: { ...process.env, MESHFORM_ROOT: root, ...env } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolve({ status: status ?? 1, stderr }));
  });
}

/**
 * GIVEN a host root: the host's bundle files (from a synthesized project) and the secrets `meshform secrets
 * host` delivers to it, as an operator would install them.
 */
export function ownHostRoot(
  project: { readonly dir: string; readonly outdir: string; readonly storeDir: string },
  mesh: string,
  datacenter: string,
  host: string,
): string {
  const root = tempDir(`meshform-${host}-`);
  fs.cpSync(path.join(project.outdir, 'bundles', `${mesh}-${datacenter}`, host, 'files'), root, { recursive: true });
  const secrets = run([
    'secrets',
    'host',
    '--project',
    project.dir,
    '--secrets-dir',
    project.storeDir,
    '--mesh',
    mesh,
    '--datacenter',
    datacenter,
    '--host',
    host,
  ]).stdout;
  fs.mkdirSync(path.join(root, 'etc/meshform'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/meshform/secrets.json'), secrets, { mode: 0o600 });
  return root;
}
