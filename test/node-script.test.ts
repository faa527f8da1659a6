import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { defineHybridMesh } from '../examples/hybrid/main';
import { reconcileMeshCa } from '../cli/ca';
import { SECRETS_RETRY_SECONDS, SECRETS_START_TIMEOUT_MINUTES } from '../constructs/private/vm-node';
import { Mesh, SecretStore } from '../index';
import { AGENT_SECRETS_KEYS, NODE_SCRIPT, ownHostRoot, runNode } from './host-support';
import { awsVmPrimary, synth, tempDir } from './support';

const NO_PYTHON = spawnSync('python3', ['--version']).error ? 'python3 not found' : undefined;
if (NO_PYTHON) console.warn(`skipping meshform-node tests: ${NO_PYTHON}`);

/** Runs meshform-node in a directory standing in for the host's root. */
function node(root: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync('python3', [NODE_SCRIPT, ...args], {
    encoding: 'utf8',
    env: { ...process.env, MESHFORM_ROOT: root, ...env },
  });
}

function writeJson(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(value));
}

function mode(file: string): number {
  return fs.statSync(file).mode & 0o777;
}

describe.skipIf(NO_PYTHON)('meshform-node (the on-host agent)', () => {
  it('signs AWS requests with Signature Version 4 (AWS documentation example)', () => {
    // The GET Object example of Amazon S3's SigV4 documentation.
    const code = `
import importlib.util, json, datetime
spec = importlib.util.spec_from_file_location("m", ${JSON.stringify(NODE_SCRIPT)})
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
h = m.sigv4_headers("GET", "https://examplebucket.s3.amazonaws.com/test.txt",
    {"Range": "bytes=0-9", "x-amz-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    b"", "us-east-1", "s3", "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    datetime.datetime(2013, 5, 24, 0, 0, 0, tzinfo=datetime.timezone.utc))
print(json.dumps(h))`;
    const headers = JSON.parse(execFileSync('python3', ['-c', code], { encoding: 'utf8' })) as {
      Authorization: string;
    };
    expect(headers.Authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, ' +
        'SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, ' +
        'Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
  });

  describe('install', () => {
    let server: http.Server;
    let base = '';
    const files = new Map<string, Buffer>();

    beforeAll(async () => {
      const dir = tempDir('meshform-release-');
      fs.writeFileSync(path.join(dir, 'consul'), '#!/bin/sh\necho consul\n');
      execFileSync('python3', [
        '-c',
        `import zipfile; z = zipfile.ZipFile(${JSON.stringify(path.join(dir, 'consul.zip'))}, "w"); z.write(${JSON.stringify(path.join(dir, 'consul'))}, "consul"); z.close()`,
      ]);
      files.set('/consul.zip', fs.readFileSync(path.join(dir, 'consul.zip')));
      files.set('/envoy', Buffer.from('#!/bin/sh\necho envoy\n'));
      server = http.createServer((req, res) => {
        const body = files.get(req.url ?? '');
        res.writeHead(body ? 200 : 404);
        res.end(body);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => server.close());

    const sha = (name: string) => createHash('sha256').update(files.get(name)!).digest('hex');

    it('installs binaries whose SHA-256 matches', async () => {
      const root = tempDir('meshform-root-');
      writeJson(path.join(root, 'etc/meshform/node.json'), {
        format: 1,
        artifacts: [
          { name: 'consul', version: '2.0.3', url: `${base}/consul.zip`, sha256: sha('/consul.zip'), format: 'zip' },
          { name: 'envoy', version: '1.38.4', url: `${base}/envoy`, sha256: sha('/envoy'), format: 'binary' },
        ],
      });
      const result = await runNode(root, ['install']);
      expect(result.status, result.stderr).toBe(0);
      expect(fs.readFileSync(path.join(root, 'usr/local/bin/consul'), 'utf8')).toContain('echo consul');
      expect(mode(path.join(root, 'usr/local/bin/envoy'))).toBe(0o755);
      expect(mode(path.join(root, 'opt/consul/data'))).toBe(0o700);
      expect(result.stderr).toContain(`installed consul 2.0.3 (sha256 ${sha('/consul.zip')})`);
    });

    it('refuses a download whose SHA-256 does not match, installing nothing', async () => {
      const root = tempDir('meshform-root-');
      writeJson(path.join(root, 'etc/meshform/node.json'), {
        format: 1,
        artifacts: [
          { name: 'envoy', version: '1.38.4', url: `${base}/envoy`, sha256: '0'.repeat(64), format: 'binary' },
        ],
      });
      const result = await runNode(root, ['install']);
      expect(result.status).toBe(1);
      expect(result.stderr).toContain(
        `meshform-node: error: envoy 1.38.4: checksum mismatch (expected ${'0'.repeat(64)}, got ${sha('/envoy')}); refusing to install`,
      );
      expect(fs.existsSync(path.join(root, 'usr/local/bin/envoy'))).toBe(false);
    });
  });

  describe('secrets delivered to your own hosts', () => {
    let out: ReturnType<typeof synth>;
    let project = '';
    let storeDir = '';

    beforeAll(() => {
      // a project holding the synthesized hybrid example, as `meshform secrets host` reads it
      project = tempDir('meshform-project-');
      fs.writeFileSync(path.join(project, 'cdktf.json'), JSON.stringify({ app: 'true' }));
      out = synth(defineHybridMesh, path.join(project, 'cdktf.out'));
      storeDir = path.join(project, 'store');
      const store = SecretStore.open({ directory: storeDir });
      store.ensure('bank');
      reconcileMeshCa(store, out.mesh('bank'), () => undefined);
    });

    /** GIVEN a host root holding the host's bundle files and its delivered secrets. */
    function hostRoot(host: string): string {
      return ownHostRoot({ dir: project, outdir: out.outdir, storeDir }, 'bank', 'on-premises', host);
    }

    it('gives a client host its own service token and nothing of the servers', () => {
      const root = hostRoot('mainframe-bridge-1');
      const delivered = JSON.parse(fs.readFileSync(path.join(root, 'etc/meshform/secrets.json'), 'utf8'));
      expect(Object.keys(delivered).sort()).toEqual(AGENT_SECRETS_KEYS);
      expect(Object.keys(delivered.tokens).sort()).toEqual(['agent', 'service-mainframe-bridge']);

      const result = node(root, ['secrets']);
      expect(result.status, result.stderr).toBe(0);
      const agent = JSON.parse(fs.readFileSync(path.join(root, 'etc/consul.d/secrets.json'), 'utf8'));
      expect(agent).toEqual({ encrypt: delivered.gossip_key, acl: { tokens: { agent: delivered.tokens.agent } } });
      expect(mode(path.join(root, 'etc/consul.d/secrets.json'))).toBe(0o640);
      expect(fs.readFileSync(path.join(root, 'etc/meshform/tokens/service-mainframe-bridge'), 'utf8')).toBe(
        delivered.tokens['service-mainframe-bridge'],
      );
      expect(fs.readFileSync(path.join(root, 'etc/meshform/node.env'), 'utf8')).toBe('PRIVATE_IP=192.168.50.31\n');
      expect(fs.readFileSync(path.join(root, 'etc/consul.d/tls/ca.pem'), 'utf8')).toBe(delivered.ca_bundle);
      expect(fs.existsSync(path.join(root, 'etc/consul.d/tls/server-key.pem'))).toBe(false);
      expect(fs.readFileSync(path.join(root, 'etc/consul.d/tls/client-api.pem'), 'utf8')).toBe(
        delivered.client_api_cert,
      );
      expect(mode(path.join(root, 'etc/consul.d/tls/client-api-key.pem'))).toBe(0o640);
    });

    it('installs the server certificate meshform issued, chained to the mesh root, and no CA key', () => {
      const root = hostRoot('consul-1');
      const delivered = JSON.parse(fs.readFileSync(path.join(root, 'etc/meshform/secrets.json'), 'utf8'));
      expect(Object.keys(delivered).sort()).toEqual([
        'acl',
        'ca_bundle',
        'format',
        'gossip_key',
        'server_cert',
        'server_key',
        'tokens',
      ]);
      expect(delivered.acl.tokens.map((t: { Description: string }) => t.Description)).toEqual([
        'meshform bank/on-premises agent token',
        'meshform bank/on-premises mesh gateway token',
        'meshform bank/on-premises service token of mainframe-bridge',
      ]);

      const result = node(root, ['secrets']);
      expect(result.status, result.stderr).toBe(0);
      const cert = path.join(root, 'etc/consul.d/tls/server.pem');
      const ca = path.join(root, 'etc/consul.d/tls/ca.pem');
      // the chain file holds leaf + intermediate: openssl verifies the leaf through it against the bundle alone
      expect(
        execFileSync('openssl', ['verify', '-CAfile', ca, '-untrusted', cert, cert], { encoding: 'utf8' }).trim(),
      ).toBe(`${cert}: OK`);
      const text = execFileSync('openssl', ['x509', '-in', cert, '-noout', '-ext', 'subjectAltName'], {
        encoding: 'utf8',
      });
      expect(text).toContain('DNS:server.on-premises.consul');
      expect(text).toContain('IP Address:192.168.50.11');
      expect(mode(path.join(root, 'etc/consul.d/tls/server-key.pem'))).toBe(0o640);
      const agent = JSON.parse(fs.readFileSync(path.join(root, 'etc/consul.d/secrets.json'), 'utf8'));
      // a secondary's servers get the replication token, never the management token
      expect(Object.keys(delivered.tokens).sort()).toEqual(['agent', 'replication']);
      expect(agent.acl.tokens).toEqual({ agent: delivered.tokens.agent, replication: delivered.tokens.replication });
      expect(delivered.tokens.replication).toBe(
        SecretStore.open({ directory: storeDir }).ensure('bank').secrets.aclReplicationToken,
      );
      // no key of a CA (root or intermediate) was delivered
      const ca_ = SecretStore.open({ directory: storeDir }).ca('bank');
      const intermediateKeyLine = ca_.intermediate('on-premises')!.keyPem.split('\n')[1]!;
      expect(fs.readFileSync(path.join(root, 'etc/meshform/secrets.json'), 'utf8')).not.toContain(intermediateKeyLine);
      expect(JSON.stringify(delivered)).not.toMatch(/ENCRYPTED PRIVATE KEY/);
    });

    it('reports a missing secrets file with the command that delivers it', () => {
      const root = tempDir('meshform-nosecrets-');
      fs.cpSync(path.join(out.outdir, 'bundles', 'bank-on-premises', 'gateway-1', 'files'), root, { recursive: true });
      const result = node(root, ['secrets']);
      expect(result.status).toBe(1);
      expect(result.stderr).toContain(
        'meshform-node: error: secrets file /etc/meshform/secrets.json is missing: deliver it with `meshform secrets host` (see the bundle README)',
      );
    });
  });

  /*
   * Issue 13, point 5: an EC2 host survives a bad boot. Instance metadata (IMDSv2) and Secrets Manager are
   * faked on 127.0.0.1 and fail as they do at boot (errors, a hung answer, a secret not written yet); the
   * agent retries with exponential backoff and jitter and says so in the journal (its stderr), and a failure
   * ends in one clear error line and a non-zero exit, on which systemd starts the unit again.
   * Protocols as AWS documents them: IMDSv2 (a PUT for a session token, then GETs carrying it; the role's
   * credentials under meta-data/iam/security-credentials/) and the Secrets Manager JSON API
   * (X-Amz-Target secretsmanager.GetSecretValue, errors as {"__type": ...}), signed with SigV4.
   */
  describe('boot against flaky instance metadata and Secrets Manager (fakes on 127.0.0.1)', () => {
    const TOKEN = 'imds-session-token';
    const CREDENTIALS = { AccessKeyId: 'AKIDFAKE', SecretAccessKey: 'fake-secret-key', Token: 'fake-session-token' };
    /** The client host's secret, as Terraform writes it (the keys meshform-node reads for a client). */
    const SECRET = {
      ca_bundle: '-----BEGIN CERTIFICATE-----\nbundle\n-----END CERTIFICATE-----\n',
      client_api_cert: '-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n',
      client_api_key: '-----BEGIN EC PRIVATE KEY-----\nkey\n-----END EC PRIVATE KEY-----\n',
      gossip_key: 'Z29zc2lwLWtleS1mb3ItYS10ZXN0LW9ubHkhISE=',
      tokens: { agent: '00000000-0000-4000-8000-000000000001', 'service-api': '00000000-0000-4000-8000-000000000002' },
    };
    /** What each fake answers to a call, in order; once a list is used up, the call succeeds. */
    type Fault = 500 | 'hang' | 'not-found' | 'invalid';
    let faults: { imdsToken: Fault[]; secretsManager: Fault[] };
    const calls: string[] = [];
    let server: http.Server;
    let base = '';
    let nodeJson: { secrets: { secret_id: string; region: string }; [key: string]: unknown };

    function fault(res: http.ServerResponse, f: Fault): void {
      if (f === 'hang') return; // never answers: the agent's timeout must fire
      if (f === 500) {
        res.writeHead(500).end('internal error');
        return;
      }
      const type = f === 'not-found' ? 'ResourceNotFoundException' : 'ValidationException';
      res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify({ __type: type, message: 'fake' }));
    }

    beforeAll(async () => {
      // the node.json meshform renders for a client host of an EC2 datacenter, read from its cloud-init document
      const out = synth((app) => awsVmPrimary(new Mesh(app, 'm')));
      const doc = parse(out.files().get('stacks/m-vms/hosts/service-api/cloud-init.yaml')!) as {
        write_files: { path: string; content: string }[];
      };
      nodeJson = JSON.parse(doc.write_files.find((f) => f.path === '/etc/meshform/node.json')!.content);
      expect(nodeJson).toMatchObject({
        role: 'client',
        address: { source: 'imds' },
        secrets: { source: 'aws-secretsmanager', secret_id: 'meshform/m/vms/service-api', region: 'eu-west-1' },
      });

      server = http.createServer((req, res) => {
        let body = '';
        req.on('data', (d: Buffer) => (body += d.toString()));
        req.on('end', () => {
          const url = req.url ?? '';
          calls.push(`${req.method} ${url}`);
          if (req.method === 'PUT' && url === '/latest/api/token') {
            const next = faults.imdsToken.shift();
            if (next !== undefined) return fault(res, next);
            if (!req.headers['x-aws-ec2-metadata-token-ttl-seconds']) return res.writeHead(400).end();
            return res.writeHead(200).end(TOKEN);
          }
          if (url.startsWith('/latest/meta-data/')) {
            if (req.headers['x-aws-ec2-metadata-token'] !== TOKEN) return res.writeHead(401).end();
            if (url === '/latest/meta-data/iam/security-credentials/') return res.writeHead(200).end('meshform-role\n');
            if (url === '/latest/meta-data/iam/security-credentials/meshform-role')
              return res.writeHead(200).end(JSON.stringify({ Code: 'Success', ...CREDENTIALS }));
            if (url === '/latest/meta-data/local-ipv4') return res.writeHead(200).end('10.20.1.7');
            return res.writeHead(404).end();
          }
          if (req.method === 'POST' && url === '/') {
            const next = faults.secretsManager.shift();
            if (next !== undefined) return fault(res, next);
            // signed with the instance role's credentials, for the secret node.json names
            const signed =
              String(req.headers.authorization).startsWith(`AWS4-HMAC-SHA256 Credential=${CREDENTIALS.AccessKeyId}/`) &&
              String(req.headers.authorization).includes(`/${nodeJson.secrets.region}/secretsmanager/aws4_request`) &&
              req.headers['x-amz-security-token'] === CREDENTIALS.Token &&
              req.headers['x-amz-target'] === 'secretsmanager.GetSecretValue';
            if (!signed || JSON.parse(body).SecretId !== nodeJson.secrets.secret_id)
              return res.writeHead(403).end(JSON.stringify({ __type: 'InvalidSignatureException' }));
            return res
              .writeHead(200)
              .end(JSON.stringify({ Name: nodeJson.secrets.secret_id, SecretString: JSON.stringify(SECRET) }));
          }
          res.writeHead(404).end();
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterEach(() => {
      calls.length = 0;
    });
    afterAll(() => {
      server.closeAllConnections();
      server.close();
    });

    /** GIVEN a host root holding the rendered node.json, its Secrets Manager calls sent to the fake. */
    function ec2Root(): string {
      const root = tempDir('meshform-ec2-');
      writeJson(path.join(root, 'etc/meshform/node.json'), {
        ...nodeJson,
        secrets: { ...nodeJson.secrets, endpoint: `${base}/` },
      });
      return root;
    }

    /** Short steps and timeouts, so that a test retries in a fraction of a second. */
    function env(retrySeconds: number): NodeJS.ProcessEnv {
      return {
        MESHFORM_IMDS_ENDPOINT: base,
        MESHFORM_RETRY_SECONDS: String(retrySeconds),
        MESHFORM_RETRY_BASE_SECONDS: '0.05',
        MESHFORM_RETRY_CAP_SECONDS: '0.4',
        MESHFORM_IMDS_TIMEOUT_SECONDS: '0.5',
        MESHFORM_AWS_TIMEOUT_SECONDS: '0.5',
      };
    }

    const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('meshform-node: error:'));

    it('retries failed, hung and not-yet-written calls with exponential backoff and jitter, then writes the secrets', async () => {
      // GIVEN IMDS failing twice then hanging once, and Secrets Manager failing, then without the secret yet
      faults = { imdsToken: [500, 500, 'hang'], secretsManager: [500, 'not-found'] };
      const root = ec2Root();
      // WHEN
      const result = await runNode(root, ['secrets'], env(60));
      // THEN it succeeded, with the secret's values where Consul reads them
      expect(result.status, result.stderr).toBe(0);
      expect(JSON.parse(fs.readFileSync(path.join(root, 'etc/consul.d/secrets.json'), 'utf8'))).toEqual({
        encrypt: SECRET.gossip_key,
        acl: { tokens: { agent: SECRET.tokens.agent } },
      });
      expect(fs.readFileSync(path.join(root, 'etc/meshform/node.env'), 'utf8')).toBe('PRIVATE_IP=10.20.1.7\n');
      // one journal line per failure, saying what failed and when it tries again
      const retries = result.stderr.split('\n').filter((l) => l.includes('retrying in'));
      const what = 'meshform-node: reading the secrets from AWS Secrets Manager';
      expect(retries.map((l) => l.replace(/retrying in [0-9.]+ s \(gives up in \d+ s\)/, 'retrying in … s'))).toEqual([
        `${what}: IMDS PUT /latest/api/token failed (attempt 1: HTTP 500); retrying in … s`,
        `${what}: IMDS PUT /latest/api/token failed (attempt 2: HTTP 500); retrying in … s`,
        `${what}: IMDS PUT /latest/api/token failed (attempt 3: timed out after 0.5 s); retrying in … s`,
        `${what}: Secrets Manager GetSecretValue of meshform/m/vms/service-api failed (attempt 4: HTTP 500); retrying in … s`,
        `${what}: Secrets Manager GetSecretValue of meshform/m/vms/service-api failed (attempt 5: HTTP 400 ResourceNotFoundException); retrying in … s`,
      ]);
      // the n-th wait is drawn from [step/2, step], step = 0.05 s doubling up to the 0.4 s cap
      const waits = retries.map((l) => Number(/retrying in ([0-9.]+) s/.exec(l)![1]));
      waits.forEach((w, i) => {
        const step = Math.min(0.4, 0.05 * 2 ** i);
        expect(w).toBeGreaterThanOrEqual(Math.floor((step / 2) * 100) / 100);
        expect(w).toBeLessThanOrEqual(Math.ceil(step * 100) / 100);
      });
      expect(errorLines(result.stderr)).toEqual([]);
      expect(result.stderr).toContain('meshform-node: secrets written for vms 10.20.1.7 (role client)');
      expect(calls.filter((c) => c === 'POST /')).toHaveLength(3);
    });

    it('gives up when the time is up with one clear error line and a non-zero exit (systemd starts it again)', async () => {
      // GIVEN Secrets Manager failing on every call
      faults = { imdsToken: [], secretsManager: Array<Fault>(1000).fill(500) };
      // WHEN the run may retry for 1 s
      const result = await runNode(ec2Root(), ['secrets'], env(1));
      // THEN
      expect(result.status).toBe(1);
      const errors = errorLines(result.stderr);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(
        /^meshform-node: error: reading the secrets from AWS Secrets Manager: gave up after \d+ attempts in \d+ s; last failure: Secrets Manager GetSecretValue of meshform\/m\/vms\/service-api: HTTP 500\. systemd starts this unit again$/,
      );
      expect(calls.filter((c) => c === 'POST /').length).toBeGreaterThan(2);
    });

    it('stops at once on an error retrying cannot fix, with one clear error line', async () => {
      // GIVEN Secrets Manager refusing the request itself
      faults = { imdsToken: [], secretsManager: ['invalid'] };
      // WHEN
      const result = await runNode(ec2Root(), ['secrets'], env(60));
      // THEN
      expect(result.status).toBe(1);
      expect(errorLines(result.stderr)).toEqual([
        'meshform-node: error: reading the secrets from AWS Secrets Manager: Secrets Manager GetSecretValue of meshform/m/vms/service-api failed (HTTP 400 ValidationException), which retrying cannot fix',
      ]);
      expect(calls.filter((c) => c === 'POST /')).toHaveLength(1);
    });

    it('runs in a unit systemd restarts until it succeeds, within whose start timeout the retries fit', () => {
      // systemd.service(5): a oneshot with Restart=on-failure runs again after RestartSec; StartLimitIntervalSec=0
      // (systemd.unit(5)) turns off the start rate limit, so systemd never gives up on it
      const out = synth((app) => awsVmPrimary(new Mesh(app, 'm')));
      const unit = out.files().get('stacks/m-vms/hosts/service-api/systemd/meshform-secrets.service')!;
      expect(unit).toMatch(/^\[Unit\][^[]*\nStartLimitIntervalSec=0\n/);
      expect(unit).toContain('\nType=oneshot\n');
      expect(unit).toContain('\nRestart=on-failure\n');
      expect(unit).toMatch(/\nRestartSec=\d+\n/);
      expect(unit).toContain(`\nTimeoutStartSec=${SECRETS_START_TIMEOUT_MINUTES}min\n`);
      expect(unit).toContain(`\nEnvironment=MESHFORM_RETRY_SECONDS=${SECRETS_RETRY_SECONDS}\n`);
      // the retries end (with their last call's timeout) before systemd would stop the run
      expect(SECRETS_RETRY_SECONDS + 20).toBeLessThan(SECRETS_START_TIMEOUT_MINUTES * 60);
      // and systemd accepts the unit as written
      if (!spawnSync('systemd-analyze', ['--version']).error) {
        const dir = tempDir('meshform-unit-');
        fs.writeFileSync(path.join(dir, 'meshform-secrets.service'), unit);
        const verify = spawnSync('systemd-analyze', ['verify', path.join(dir, 'meshform-secrets.service')], {
          encoding: 'utf8',
          env: { ...process.env, SYSTEMD_UNIT_PATH: `${dir}:` },
        });
        const problems = `${verify.stdout}${verify.stderr}`
          .split('\n')
          .filter((l) => l.trim() !== '' && !/is not executable: No such file or directory/.test(l));
        expect(problems).toEqual([]);
      }
    });
  });
});
