import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconcileMeshCa } from '../cli/ca';
import { Mesh, SecretStore, Service, ServiceProtocol, VmDatacenter } from '../index';
import { FakeConsul, NODE_SCRIPT, ownHostRoot, runNode } from './host-support';
import { ownHosts, synth, tempDir } from './support';

const NO_PYTHON = spawnSync('python3', ['--version']).error ? 'python3 not found' : undefined;
if (NO_PYTHON) console.warn(`skipping meshform-node config-entries tests: ${NO_PYTHON}`);

describe.skipIf(NO_PYTHON)(
  'meshform-node config-entries (a VM primary applies the mesh config after bootstrap)',
  () => {
    let consul: FakeConsul;
    let root = '';
    let address = '';

    beforeAll(async () => {
      // GIVEN an own-hosts primary with two services, synthesized, its store issued, and a server's secrets delivered
      const project = tempDir('meshform-project-');
      fs.writeFileSync(path.join(project, 'cdktf.json'), JSON.stringify({ app: 'true' }));
      const out = synth(
        (app) => {
          const mesh = new Mesh(app, 'lab');
          const api = new Service(mesh, 'api', { port: 9090, protocol: ServiceProtocol.HTTP });
          const web = new Service(mesh, 'web', { port: 80, protocol: ServiceProtocol.HTTP, upstreams: [api] });
          const dc = new VmDatacenter(mesh, 'onprem', { primary: true, hosts: ownHosts([api, web]) });
          api.runsIn(dc);
          web.runsIn(dc);
          api.allowFrom(web);
        },
        path.join(project, 'cdktf.out'),
      );
      const storeDir = path.join(project, 'store');
      const store = SecretStore.open({ directory: storeDir });
      store.ensure('lab');
      reconcileMeshCa(store, out.mesh('lab'), () => undefined);
      root = ownHostRoot({ dir: project, outdir: out.outdir, storeDir }, 'lab', 'onprem', 's1');
      expect(
        spawnSync('python3', [NODE_SCRIPT, 'secrets'], { env: { ...process.env, MESHFORM_ROOT: root } }).status,
      ).toBe(0);
      consul = new FakeConsul(store.ca('lab').server('onprem')!);
      address = await consul.start();
      // an entry meshform applied before and no longer declares, and one somebody else manages
      consul.entries.set('service-defaults/old', {
        Kind: 'service-defaults',
        Name: 'old',
        Meta: { 'managed-by': 'meshform' },
      });
      consul.entries.set('service-defaults/theirs', { Kind: 'service-defaults', Name: 'theirs' });
    }, 600_000);

    afterAll(() => consul?.stop());

    it('applies every entry in order over verified TLS with the management token, and removes what meshform no longer declares', async () => {
      const result = await runNode(root, ['config-entries'], { MESHFORM_CONSUL_HTTP_ADDR: address });
      expect(result.status, result.stderr).toBe(0);
      const puts = consul.requests.filter((r) => r.startsWith('PUT'));
      expect(puts).toHaveLength(5);
      expect([...consul.entries.keys()].sort()).toEqual([
        'mesh/mesh',
        'proxy-defaults/global',
        'service-defaults/api',
        'service-defaults/theirs',
        'service-defaults/web',
        'service-intentions/api',
      ]);
      expect(consul.requests.filter((r) => r.includes('(no token)'))).toEqual([]);
      expect(consul.requests).toContain('DELETE /v1/config/service-defaults/old');
      expect(result.stderr).toContain('meshform-node: applied proxy-defaults global');
      expect(result.stderr).toContain('meshform-node: deleted service-defaults old (no longer declared)');
      expect(result.stderr.indexOf('applied service-defaults api')).toBeLessThan(
        result.stderr.indexOf('applied service-intentions api'),
      );
      expect(consul.entries.get('service-intentions/api')).toEqual({
        Kind: 'service-intentions',
        Name: 'api',
        Sources: [{ Name: 'web', Action: 'allow' }],
        Meta: { 'managed-by': 'meshform' },
      });
    });

    it('does nothing when the entries did not change since the last run', async () => {
      const before = consul.requests.length;
      const result = await runNode(root, ['config-entries'], { MESHFORM_CONSUL_HTTP_ADDR: address });
      expect(result.status, result.stderr).toBe(0);
      expect(result.stderr).toContain('meshform-node: config entries unchanged');
      expect(consul.requests.length).toBe(before);
    });

    it('refuses a Consul whose certificate is not of the mesh (TLS verified against the installed bundle)', async () => {
      const other = SecretStore.open({ directory: path.join(tempDir(), 'store') });
      other.ensure('x');
      const { reconcileCa } = await import('../constructs/private/ca-material');
      const { CertificateAuthority } = await import('../index');
      reconcileCa(
        other.ca('x'),
        CertificateAuthority.offline().plan,
        [{ datacenter: 'onprem', dnsNames: ['server.onprem.consul'], ipAddresses: ['127.0.0.1'] }],
        () => undefined,
      );
      const impostor = new FakeConsul(other.ca('x').server('onprem')!);
      const impostorAddress = await impostor.start();
      fs.rmSync(path.join(root, 'var/lib/meshform/config-entries.sha256'), { force: true });
      try {
        const result = await Promise.race([
          runNode(root, ['config-entries'], { MESHFORM_CONSUL_HTTP_ADDR: impostorAddress }),
          new Promise<{ status: number; stderr: string }>((r) =>
            setTimeout(() => r({ status: -1, stderr: 'still retrying' }), 15_000),
          ),
        ]);
        expect(result.status).toBe(1);
        expect(result.stderr).toContain(
          "meshform-node: error: Consul's certificate does not verify against the mesh's CA bundle",
        );
        expect(result.stderr).toContain('CERTIFICATE_VERIFY_FAILED');
        expect(impostor.requests.filter((r) => r.startsWith('PUT'))).toEqual([]);
      } finally {
        impostor.stop();
      }
    }, 600_000);
  },
);
