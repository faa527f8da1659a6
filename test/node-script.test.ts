import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineHybridMesh } from '../examples/hybrid/main';
import { reconcileMeshCa } from '../cli/ca';
import { SecretStore } from '../index';
import { AGENT_SECRETS_KEYS, NODE_SCRIPT, ownHostRoot, runNode } from './host-support';
import { synth, tempDir } from './support';

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
});
