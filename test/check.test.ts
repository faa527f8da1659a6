import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { checkLogins, checkMesh, checkMeshes, CHECK_EXIT, Edge, renderCheck } from '../cli/check';
import type { App } from '../constructs/private/engine';
import {
  KubernetesCluster,
  KubernetesDatacenter,
  MachineImage,
  Mesh,
  MeshGatewayMode,
  SecretStore,
  Service,
  ServiceProtocol,
  VmDatacenter,
  VmHosts,
  VmNetwork,
} from '../index';
import { project, readOutput, REPO, run, synth, tempDir } from './support';

afterEach(() => vi.restoreAllMocks());

/**
 * GIVEN helper: east (primary) and west clusters, web in both, api in east only; `define` adds the rest. West's
 * API server admits the primary when `westAdmitsPrimary` (else that federation login is unproven).
 */
function meshWith(
  define: (s: {
    mesh: Mesh;
    east: KubernetesDatacenter;
    west: KubernetesDatacenter;
    web: Service;
    api: Service;
  }) => void,
  meshGatewayMode?: MeshGatewayMode,
  westAdmitsPrimary?: boolean,
) {
  return (app: App) => {
    const mesh = new Mesh(app, 'shop', meshGatewayMode ? { traffic: { meshGatewayMode } } : {});
    const east = new KubernetesDatacenter(mesh, 'east', {
      primary: true,
      cluster: KubernetesCluster.fromKubeconfig({ context: 'east' }),
      meshGateway: { address: 'mgw.east.example.com' },
    });
    const west = new KubernetesDatacenter(mesh, 'west', {
      cluster: KubernetesCluster.fromKubeconfig({
        context: 'west',
        apiServerUrl: 'https://198.51.100.7',
        apiServerAdmitsPrimary: westAdmitsPrimary,
      }),
    });
    const api = new Service(mesh, 'api', { port: 9090, protocol: ServiceProtocol.HTTP, datacenters: [east] });
    const web = new Service(mesh, 'web', {
      port: 80,
      protocol: ServiceProtocol.HTTP,
      datacenters: [east],
      upstreams: [api],
    });
    define({ mesh, east, west, web, api });
  };
}

function edges(define: Parameters<typeof meshWith>[0], meshGatewayMode?: MeshGatewayMode): Edge[] {
  return checkMesh(synth(meshWith(define, meshGatewayMode)).mesh('shop'));
}

describe('meshform check: a static proof of every declared upstream', () => {
  it('passes the default example, and prints the matrix', () => {
    const dir = project(path.join(REPO, 'examples', 'default', 'main.ts'));
    const { code, stdout } = run(['check', '--project', dir, '--secrets-dir', path.join(dir, 'store')]);
    expect(code).toBe(CHECK_EXIT.ok);
    expect(stdout).toContain('mesh shop — 4 upstream edges, all reachable');
    expect(stdout).toContain(
      "  ok aws-us-east → gcp-europe-west (https://203.0.113.20): declared: the API server admits aws-us-east's Consul servers (meshform cannot check this allow-list)",
    );
    expect(stdout).toMatch(/edge +trust +path +intention +protocol +failover/);
    expect(stdout).toContain('  ok web@aws-us-east → api@aws-us-east|gcp-europe-west');
    expect(stdout).toContain('      path      local, then via mesh gateways (local mode) to gcp-europe-west');
    expect(stdout).toContain('      intention allowed (L7): GET,POST /api/*');
    expect(stdout).toContain('      trust     verified: chains of aws-us-east, aws-vms under root-1');
    const json = JSON.parse(
      run(['check', '--json', '--project', dir, '--secrets-dir', path.join(dir, 'store')]).stdout,
    );
    expect(json.exitCode).toBe(0);
    expect(
      json.meshes[0].edges.map(
        (e: Edge) => `${e.from}@${e.fromDatacenter} → ${e.to}@${e.toDatacenters.join('|')} ${e.ok}`,
      ),
    ).toEqual([
      'api@aws-us-east → db@aws-vms true',
      'api@gcp-europe-west → db@aws-vms true',
      'web@aws-us-east → api@aws-us-east|gcp-europe-west true',
      'web@gcp-europe-west → api@gcp-europe-west true',
    ]);
  });

  it('fails on a missing intention, naming the fix, and exits 4', () => {
    const [edge] = edges(() => undefined);
    expect(edge).toMatchObject({
      from: 'web',
      to: 'api',
      ok: false,
      intention: { ok: false, note: 'no intention: denied by default', fix: 'api.allowFrom(web)' },
    });
    // the CLI: a project whose mesh lacks the intention
    const program = path.join(tempDir(), 'app.ts');
    fs.writeFileSync(
      program,
      `import { App, KubernetesCluster, KubernetesDatacenter, Mesh, Service, ServiceProtocol } from ${JSON.stringify(path.join(REPO, 'index'))};
const app = new App({ stackTraces: false });
const mesh = new Mesh(app, 'shop');
const east = new KubernetesDatacenter(mesh, 'east', { primary: true, cluster: KubernetesCluster.fromKubeconfig({ context: 'east' }) });
const api = new Service(mesh, 'api', { port: 9090, protocol: ServiceProtocol.HTTP, datacenters: [east] });
new Service(mesh, 'web', { port: 80, protocol: ServiceProtocol.HTTP, datacenters: [east], upstreams: [api] });
app.synth();
`,
    );
    const dir = project(program);
    const { code, stdout } = run(['check', '--project', dir, '--secrets-dir', path.join(dir, 'store')]);
    expect(code).toBe(CHECK_EXIT.broken);
    expect(stdout).toContain('mesh shop — 1 upstream edge, 1 broken');
    expect(stdout).toContain('  BROKEN web@east → api@east');
    expect(stdout).toContain('      intention no intention: denied by default — fix: api.allowFrom(web)');
  });

  it('fails on an explicit deny', () => {
    const [edge] = edges(({ web, api }) => api.denyFrom(web));
    expect(edge!.intention).toEqual({
      ok: false,
      note: 'denied by api.denyFrom(web)',
      fix: 'replace it with api.allowFrom(web)',
    });
  });

  it('fails when the upstream does not run where the caller does and has no failover', () => {
    const broken = edges(({ web, api, west }) => {
      web.runsIn(west);
      api.allowFrom(web);
    });
    expect(broken.map((e) => `${e.fromDatacenter} ${e.ok}`)).toEqual(['east true', 'west false']);
    expect(broken[1]!.failover).toEqual({
      ok: false,
      note: 'api does not run in west and has no failover',
      fix: 'run api in west, add api.failoverTo(east), or pin addUpstream(api, { datacenter })',
    });
    // pinning the upstream to a datacenter it runs in mends it
    const pinned = edges(({ mesh, west, api }) => {
      new Service(mesh, 'batch', { port: 70, datacenters: [west] }).addUpstream(api, {
        datacenter: api.datacenters[0],
      });
      api.allowFrom(mesh.services.find((s) => s.name === 'web')!);
      api.allowFrom(mesh.services.find((s) => s.name === 'batch')!);
    });
    expect(pinned.find((e) => e.from === 'batch')).toMatchObject({
      ok: true,
      toDatacenters: ['east'],
      path: { ok: true, note: 'via mesh gateways (local mode) to east' },
    });
  });

  it('fails when sidecars do not use mesh gateways between datacenters', () => {
    const viaFailover = edges(({ west, web, api }) => {
      web.runsIn(west);
      api.runsIn(west).failoverTo(west);
      api.allowFrom(web);
    }, MeshGatewayMode.NONE).find((e) => e.fromDatacenter === 'east')!;
    expect(viaFailover.path).toEqual({
      ok: false,
      note: 'mesh gateway mode "none": sidecars dial remote instances directly',
      fix: 'set traffic: { meshGatewayMode: MeshGatewayMode.LOCAL } on the Mesh',
    });
  });

  it("fails when the target datacenter's gateway is reachable only from its own network, unless the networks are peered", () => {
    const vmMesh = (peered: boolean) => (app: App) => {
      const mesh = new Mesh(app, 'shop');
      const east = new KubernetesDatacenter(mesh, 'east', {
        primary: true,
        cluster: KubernetesCluster.fromKubeconfig({ context: 'east' }),
        meshGateway: { address: 'mgw.east.example.com' },
      });
      const image = MachineImage.fromId('ami-0123456789abcdef0');
      // internal network load balancer (the default)
      const vms = new VmDatacenter(mesh, 'vms', {
        hosts: VmHosts.onAws({
          region: 'us-east-1',
          network: VmNetwork.newVpc({ cidr: '10.20.0.0/16' }),
          machineImage: image,
        }),
      });
      const other = new VmDatacenter(mesh, 'other', {
        hosts: VmHosts.onAws({
          region: 'us-east-1',
          network: VmNetwork.newVpc({ cidr: '10.21.0.0/16' }),
          machineImage: image,
        }),
      });
      if (peered) other.peerWith(vms);
      const db = new Service(mesh, 'db', { port: 5432, datacenters: [vms] });
      const api = new Service(mesh, 'api', { port: 80, datacenters: [east] }).addUpstream(db, { datacenter: vms });
      const job = new Service(mesh, 'job', { port: 81, datacenters: [other] }).addUpstream(db, { datacenter: vms });
      db.allowFrom(api).allowFrom(job);
    };
    const unpeered = checkMesh(synth(vmMesh(false)).mesh('shop'));
    expect(unpeered.find((e) => e.from === 'api')!.path).toEqual({
      ok: false,
      note: 'the gateway of vms is reachable only from its own network',
      fix: "expose it (internetFacing: true, an Elastic IP, or a public load balancer) or peer east's network with it",
    });
    expect(unpeered.find((e) => e.from === 'job')!.path.ok).toBe(false);
    const peered = checkMesh(synth(vmMesh(true)).mesh('shop'));
    expect(peered.find((e) => e.from === 'job')!.path).toEqual({
      ok: true,
      note: 'via mesh gateways (local mode) to vms',
    });
    expect(peered.find((e) => e.from === 'api')!.path.ok).toBe(false);
  });

  it("verifies trust with the issued certificates, and fails when a datacenter's chain is of another root", () => {
    const dir = project(path.join(REPO, 'examples', 'default', 'main.ts'));
    const storeDir = path.join(dir, 'store');
    run(['synth', '--project', dir, '--secrets-dir', storeDir]);
    const manifest = readOutput(path.join(dir, 'cdktf.out')).mesh('shop');
    const store = SecretStore.open({ directory: storeDir });
    expect(checkMesh(manifest, store).every((e) => e.trust.ok)).toBe(true);
    // aws-vms now presents a chain of another mesh's hierarchy
    const other = tempDir();
    const otherDir = project(path.join(REPO, 'examples', 'default', 'main.ts'));
    run(['synth', '--project', otherDir, '--secrets-dir', other]);
    for (const f of ['server.pem', 'server-key.pem']) {
      fs.copyFileSync(
        path.join(other, 'shop', 'ca', 'datacenters', 'aws-vms', f),
        path.join(storeDir, 'shop', 'ca', 'datacenters', 'aws-vms', f),
      );
    }
    const broken = checkMesh(manifest, store).filter((e) => !e.trust.ok);
    expect(broken.map((e) => `${e.from}@${e.fromDatacenter} → ${e.to}`)).toEqual([
      'api@aws-us-east → db',
      'api@gcp-europe-west → db',
    ]);
    expect(broken[0]!.trust).toEqual({
      ok: false,
      note: "aws-us-east and aws-vms do not trust each other's certificates",
      fix: 'run npx meshform ca status and renew the datacenter that fails (npx meshform ca rotate --intermediate <dc>)',
    });
  });

  it("reports the primary's logins to a Kubernetes secondary it cannot prove (an allow-list meshform does not manage), and exits 4 until declared", () => {
    // GIVEN east (primary) and west, an existing cluster reached by kubeconfig, web → api allowed
    const manifest = synth(meshWith(({ web, api }) => api.allowFrom(web))).mesh('shop');
    // THEN the upstream edge holds, the login edge east → west is unproven, and the check fails closed
    expect(checkMesh(manifest).every((e) => e.ok)).toBe(true);
    expect(checkLogins(manifest)).toEqual([
      {
        from: 'east',
        to: 'west',
        apiServer: 'https://198.51.100.7',
        reach: 'unproven',
        ok: false,
        note: "meshform does not manage the allow-list of https://198.51.100.7: the primary's logins to this datacenter's auth method are not proven",
        fix:
          "admit the addresses east's Consul servers leave their network from in the API server's allow-list, " +
          'then declare it with KubernetesCluster.fromKubeconfig({ ..., apiServerAdmitsPrimary: true })',
      },
    ]);
    const document = checkMeshes([manifest]);
    expect(document.exitCode).toBe(CHECK_EXIT.broken);
    expect(renderCheck(document)).toContain(
      "  federation logins (the primary's servers → each Kubernetes secondary's API server): 1 unproven",
    );
    // WHEN the cluster's options declare that its API server admits the primary, THEN the check passes
    const declared = synth(meshWith(({ web, api }) => api.allowFrom(web), undefined, true)).mesh('shop');
    expect(checkLogins(declared)).toMatchObject([{ reach: 'declared', ok: true }]);
    expect(checkMeshes([declared]).exitCode).toBe(CHECK_EXIT.ok);
  });
});
