import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defineHybridMesh } from '../examples/hybrid/main';
import { HostRole, SecretStore, Service, VmDatacenter, VmHosts } from '../index';
import { reconcileMeshCa } from '../cli/ca';
import { AGENT_SECRETS_KEYS } from './host-support';
import { kubernetesPrimary, project as makeProject, run, Synthesized, synth, thrownMessage } from './support';

/** The hybrid example synthesized in a project with its secret store, and `meshform secrets host` on it. */
function hybridProject(): {
  out: Synthesized;
  secrets: { gossipKey: string };
  hostSecrets: (datacenter: string, host: string) => string;
} {
  const dir = makeProject('true');
  const storeDir = path.join(dir, 'store');
  const out = synth(defineHybridMesh, path.join(dir, 'cdktf.out'));
  const store = SecretStore.open({ directory: storeDir });
  const secrets = store.ensure('bank').secrets;
  reconcileMeshCa(store, out.mesh('bank'), () => undefined);
  const hostSecrets = (datacenter: string, host: string) =>
    run([
      'secrets',
      'host',
      '--project',
      dir,
      '--secrets-dir',
      storeDir,
      '--mesh',
      'bank',
      '--datacenter',
      datacenter,
      '--host',
      host,
    ]).stdout;
  return { out, secrets, hostSecrets };
}

describe('VM datacenter on your own hosts', () => {
  it('writes one bundle per host: files, install script and README', () => {
    // GIVEN / WHEN
    const files = synth(defineHybridMesh).files();
    // THEN
    const bundles = [...files.keys()].filter((f) => f.startsWith('bundles/')).map((f) => f.split('/')[2]);
    expect([...new Set(bundles)].sort()).toEqual([
      'consul-1',
      'consul-2',
      'consul-3',
      'gateway-1',
      'mainframe-bridge-1',
    ]);
    const bridge = [...files.keys()].filter((f) => f.startsWith('bundles/bank-on-premises/mainframe-bridge-1/')).sort();
    expect(bridge).toEqual([
      'bundles/bank-on-premises/mainframe-bridge-1/README.md',
      'bundles/bank-on-premises/mainframe-bridge-1/files/etc/consul.d/consul.hcl',
      'bundles/bank-on-premises/mainframe-bridge-1/files/etc/meshform/node.json',
      'bundles/bank-on-premises/mainframe-bridge-1/files/etc/systemd/system/consul.service',
      'bundles/bank-on-premises/mainframe-bridge-1/files/etc/systemd/system/envoy-mainframe-bridge.service',
      'bundles/bank-on-premises/mainframe-bridge-1/files/etc/systemd/system/meshform-secrets.service',
      'bundles/bank-on-premises/mainframe-bridge-1/files/etc/systemd/system/meshform-service-mainframe-bridge.service',
      'bundles/bank-on-premises/mainframe-bridge-1/files/usr/local/sbin/meshform-node',
      'bundles/bank-on-premises/mainframe-bridge-1/install.sh',
    ]);
  });

  it('makes install scripts that are valid bash and refuse to run without the delivered secrets', () => {
    const out = synth(defineHybridMesh);
    const script = path.join(out.outdir, 'bundles/bank-on-premises/consul-1/install.sh');
    expect(fs.statSync(script).mode & 0o777).toBe(0o755);
    expect(spawnSync('bash', ['-n', script]).status).toBe(0);
    const content = fs.readFileSync(script, 'utf8');
    expect(content).toContain(
      '[ -s /etc/meshform/secrets.json ] || { echo "/etc/meshform/secrets.json is missing: deliver it first (README.md)" >&2; exit 1; }',
    );
    // --no-block: consul.service is ready only after joining its peers, which may not be installed yet
    expect(content).toContain(
      'systemctl enable --now --no-block consul.service meshform-acl-bootstrap.service meshform-acl-bootstrap.timer',
    );
  });

  it('explains in each README how the secrets reach the host without being in the bundle', () => {
    const readme = synth(defineHybridMesh).files().get('bundles/bank-on-premises/gateway-1/README.md')!;
    expect(readme).toContain('# Host gateway-1: mesh-gateway of bank/on-premises');
    expect(readme).toContain(
      "npx meshform secrets host --mesh bank --datacenter on-premises --host gateway-1 \\\n  | ssh root@192.168.50.20 'install -D -m 0600 /dev/stdin /etc/meshform/secrets.json'",
    );
    expect(readme).toContain('Installs Consul consul 2.0.3 and envoy 1.38.4 (SHA-256 verified before install)');
  });

  it('points agents at the server hosts and pins the binaries with their checksums', () => {
    const files = synth(defineHybridMesh).files();
    const nodeJson = JSON.parse(files.get('bundles/bank-on-premises/mainframe-bridge-1/files/etc/meshform/node.json')!);
    expect(nodeJson).toMatchObject({
      role: 'client',
      address: { source: 'static', value: '192.168.50.31' },
      secrets: { source: 'file', path: '/etc/meshform/secrets.json' },
      artifacts: [
        {
          name: 'consul',
          url: 'https://releases.hashicorp.com/consul/2.0.3/consul_2.0.3_linux_amd64.zip',
          sha256: '3020eea3fdfd939eb021ecaca105a1513af52b22e76f2ee97ea85acc6ff2f832',
        },
        {
          name: 'envoy',
          url: 'https://github.com/envoyproxy/envoy/releases/download/v1.38.4/envoy-1.38.4-linux-x86_64',
          sha256: 'c994c452de131f59c9ec9f4a2fffcc65039f250a38b6279870bb95dac21db0fa',
        },
      ],
    });
    expect(files.get('bundles/bank-on-premises/mainframe-bridge-1/files/etc/consul.d/consul.hcl')).toContain(
      'retry_join = ["192.168.50.11", "192.168.50.12", "192.168.50.13"]',
    );
  });

  it('puts no secret in any bundle', () => {
    // GIVEN the hybrid example synthesized, with its secret store
    const { out, secrets, hostSecrets } = hybridProject();
    // WHEN a server host's secrets are handed out
    const delivered = hostSecrets('on-premises', 'consul-1');
    // THEN none of them, nor any private key, is in a bundle
    const tokens = Object.values((JSON.parse(delivered) as { tokens: { [k: string]: string } }).tokens);
    for (const [file, content] of out.files()) {
      if (!file.startsWith('bundles/')) continue;
      expect(content, file).not.toMatch(/PRIVATE KEY/);
      expect(content, file).not.toContain(secrets.gossipKey);
      for (const token of tokens) expect(content, file).not.toContain(token);
    }
  });

  it('hands out secrets per role: a gateway gets its gateway token only', () => {
    // GIVEN the hybrid example synthesized, with its secret store
    const { hostSecrets } = hybridProject();
    // WHEN the gateway host's secrets are handed out
    const gateway = JSON.parse(hostSecrets('on-premises', 'gateway-1'));
    // THEN it gets the agent and mesh gateway tokens, nothing of the servers
    expect(Object.keys(gateway.tokens).sort()).toEqual(['agent', 'mesh-gateway']);
    expect(Object.keys(gateway).sort()).toEqual(AGENT_SECRETS_KEYS);
    // AND hosts meshform does not hand secrets to are refused with the reason
    expect(thrownMessage(() => hostSecrets('vms', 'x'))).toBe(
      'datacenter "vms" does not run on your own hosts: its hosts fetch their secrets themselves',
    );
    expect(thrownMessage(() => hostSecrets('on-premises', 'nope'))).toBe(
      'datacenter "on-premises" has no host "nope" (hosts: consul-1, consul-2, consul-3, gateway-1, mainframe-bridge-1)',
    );
  });
});

describe('validation of your own hosts', () => {
  const three = [
    { name: 's1', address: '10.0.0.1', role: HostRole.SERVER },
    { name: 's2', address: '10.0.0.2', role: HostRole.SERVER },
    { name: 's3', address: '10.0.0.3', role: HostRole.SERVER },
    { name: 'gw', address: '10.0.0.9', role: HostRole.MESH_GATEWAY },
  ];

  it('rejects a host listed twice, by name or by address', () => {
    expect(
      thrownMessage(() =>
        synth(
          (app) =>
            new VmDatacenter(kubernetesPrimary(app), 'own', {
              hosts: VmHosts.existing([...three, { name: 's1', address: '10.0.0.4', role: HostRole.CLIENT }]),
            }),
        ),
      ),
    ).toBe('[m/own] two hosts have the same name: "s1". Fix: list every host once, each with its own name');
    expect(
      thrownMessage(() =>
        synth(
          (app) =>
            new VmDatacenter(kubernetesPrimary(app), 'own', {
              hosts: VmHosts.existing([...three, { name: 'c1', address: '10.0.0.1', role: HostRole.CLIENT }]),
            }),
        ),
      ),
    ).toBe('[m/own] two hosts have the same address: "10.0.0.1". Fix: list every host once, each with its own address');
  });

  it('rejects a server count other than 3 or 5', () => {
    expect(
      thrownMessage(() =>
        synth((app) => new VmDatacenter(kubernetesPrimary(app), 'own', { hosts: VmHosts.existing(three.slice(1)) })),
      ),
    ).toBe('[m/own] Consul server count must be one of 3, 5: 2. Fix: use 3 or 5 servers');
    expect(
      thrownMessage(() =>
        synth((app) => new VmDatacenter(kubernetesPrimary(app), 'own', { servers: 5, hosts: VmHosts.existing(three) })),
      ),
    ).toBe(
      '[m/own] `servers` says 5 but 3 hosts have the server role: 5. Fix: list as many server hosts as `servers` says, or leave `servers` out',
    );
  });

  it('rejects a datacenter without a gateway host, and a service no host carries', () => {
    expect(
      thrownMessage(() =>
        synth((app) => new VmDatacenter(kubernetesPrimary(app), 'own', { hosts: VmHosts.existing(three.slice(0, 3)) })),
      ),
    ).toBe(
      '[m/own] the datacenter has no mesh-gateway host: "mesh-gateway". Fix: add a host with `role: HostRole.MESH_GATEWAY`: every datacenter federates through its mesh gateway',
    );
    expect(
      thrownMessage(() =>
        synth((app) => {
          const mesh = kubernetesPrimary(app);
          const own = new VmDatacenter(mesh, 'own', { hosts: VmHosts.existing(three) });
          new Service(mesh, 'api', { port: 8080, datacenters: [own] });
        }),
      ),
    ).toBe(
      '[m/api] service "api" runs in datacenter "own" but no host of it carries the service: "api". Fix: add the service to the `services` of a client host',
    );
  });

  it('rejects a host address that is not an IP, and services on a server', () => {
    expect(
      thrownMessage(() =>
        synth(
          (app) =>
            new VmDatacenter(kubernetesPrimary(app), 'own', {
              hosts: VmHosts.existing([...three, { name: 'c', address: 'db.local', role: HostRole.CLIENT }]),
            }),
        ),
      ),
    ).toBe('[m/own] host "c" has no valid IP address: "db.local". Fix: give the host\'s private IPv4 or IPv6 address');
    expect(
      thrownMessage(() =>
        synth((app) => {
          const mesh = kubernetesPrimary(app);
          const svc = new Service(mesh, 'api', { port: 1 });
          new VmDatacenter(mesh, 'own', {
            hosts: VmHosts.existing([{ ...three[0]!, services: [svc] }, ...three.slice(1)]),
          });
        }),
      ),
    ).toBe('[m/own] host "s1" has the server role and lists services: "s1". Fix: put services on client hosts only');
  });
});
