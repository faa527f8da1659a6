import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseHcl } from '../constructs/private/hcl';
import { CONSUL_START_TIMEOUT } from '../constructs/private/vm-node';
import { inboundLines, MESH_FLOWS, portText } from '../constructs/private/vm-ports';
import { defineHybridMesh } from '../examples/hybrid/main';
import { Mesh, Service, VmDatacenter } from '../index';
import gatewayFixture from './fixtures/consul-mesh-gateway-federation.json';
import { awsVmPrimary, ownHosts, resources, synth } from './support';

/** The hybrid example (an EC2 datacenter and one on your own hosts), synthesized once. */
const hybrid = synth(defineHybridMesh);
const files = hybrid.files();

/** Every systemd unit the example's hosts get: EC2 host groups (rendered for review) and own-host bundles. */
function unitsOf(suffix: string): [string, string][] {
  return [...files].filter(([file]) => /\/systemd\/|\/etc\/systemd\/system\//.test(file) && file.endsWith(suffix));
}

/** `Key=value` settings of a unit file, by key (repeated keys keep every value). */
function settings(content: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of content.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

function one(unit: Map<string, string[]>, key: string): string | undefined {
  return unit.get(key)?.[0];
}

describe('VM mesh gateways carry WAN federation', () => {
  it(`register with ${gatewayFixture.flags.join(' ')} (hashicorp/consul v2.0.3 command/connect/envoy/envoy.go: meta consul-wan-federation=1)`, () => {
    // GIVEN the gateway unit of every VM gateway host (EC2 group and own host)
    const gateways = unitsOf('consul-mesh-gateway.service');
    expect(gateways.map(([f]) => f).sort()).toEqual([
      'bundles/bank-on-premises/gateway-1/files/etc/systemd/system/consul-mesh-gateway.service',
      'stacks/bank-vms/hosts/mesh-gateway/systemd/consul-mesh-gateway.service',
    ]);
    for (const [file, content] of gateways) {
      // THEN the command line registers the gateway exposing the servers: only then does its proxy config watch
      // the datacenter's servers and Envoy route other datacenters' server traffic (agent/proxycfg/mesh_gateway.go)
      const command = one(settings(content), 'ExecStart')!.split(' ');
      for (const flag of gatewayFixture.flags) expect(command, file).toContain(flag);
      expect(command[0], file).toBe('/usr/local/bin/consul');
    }
  });
});

describe('VM units retry instead of failing once (systemd v252 systemd.unit(5), systemd.service(5))', () => {
  const services = unitsOf('.service');

  it('order every dependency with Wants= + After=, never Requires= (a failed Requires= dependency fails the dependent for good)', () => {
    expect(services.length).toBeGreaterThan(10);
    for (const [file, content] of services) {
      const unit = settings(content);
      expect(unit.get('Requires'), file).toBeUndefined();
      for (const wanted of (one(unit, 'Wants') ?? '').split(' ').filter(Boolean))
        expect(one(unit, 'After')!.split(' '), file).toContain(wanted);
      // no start rate limit: systemd's default stops restarting after 5 starts in 10 s
      expect(one(unit, 'StartLimitIntervalSec'), file).toBe('0');
    }
  });

  it('give Consul time to join its peers (it notifies systemd only after its first LAN join: hashicorp/consul v2.0.3 agent/agent.go JoinLAN), then restart it', () => {
    for (const [file, content] of services.filter(([f]) => f.endsWith('/consul.service'))) {
      const unit = settings(content);
      expect(one(unit, 'Type'), file).toBe('notify');
      expect(one(unit, 'TimeoutStartSec'), file).toBe(CONSUL_START_TIMEOUT);
      // on-failure covers a start timeout ("when an operation ... times out")
      expect(one(unit, 'Restart'), file).toBe('on-failure');
      // without its secrets it fails and retries rather than starting half-configured
      expect(one(unit, 'ExecStartPre'), file).toBe('/usr/bin/test -s /etc/consul.d/secrets.json');
      expect(one(unit, 'Wants'), file).toBe('network-online.target meshform-secrets.service');
    }
  });

  it('bound each meshform-node oneshot (TimeoutStartSec is infinite by default for oneshots) and restart it on failure', () => {
    const oneshots = services.filter(([, content]) => one(settings(content), 'Type') === 'oneshot');
    expect(oneshots.map(([f]) => path.basename(f)).sort()).toEqual(
      expect.arrayContaining([
        'meshform-acl-bootstrap.service',
        'meshform-secrets.service',
        'meshform-service-ledger.service',
        'meshform-service-mainframe-bridge.service',
      ]),
    );
    for (const [file, content] of oneshots) {
      const unit = settings(content);
      expect(one(unit, 'TimeoutStartSec'), file).toMatch(/^\d+min$/);
      expect(one(unit, 'Restart'), file).toBe('on-failure');
    }
    // Envoy (sidecars and gateway) exits while its registration or token is missing: restarted always
    for (const [file, content] of services.filter(([f]) => /envoy-|consul-mesh-gateway/.test(f)))
      expect(one(settings(content), 'Restart'), file).toBe('always');
  });

  it('re-apply ACL changes on servers every 5 minutes, and start without waiting for the join', () => {
    for (const [file, content] of unitsOf('meshform-acl-bootstrap.timer')) {
      expect(one(settings(content), 'Unit'), file).toBe('meshform-acl-bootstrap.service');
      expect(one(settings(content), 'OnUnitInactiveSec'), file).toBe('5min');
    }
    const cloudInit = parse(files.get('stacks/bank-vms/hosts/server/cloud-init.yaml')!) as { runcmd: string[][] };
    expect(cloudInit.runcmd[2]!.slice(0, 4)).toEqual(['systemctl', 'enable', '--now', '--no-block']);
    expect(cloudInit.runcmd[2]).toContain('meshform-acl-bootstrap.timer');
    expect(files.get('bundles/bank-on-premises/consul-1/install.sh')).toContain('systemctl enable --now --no-block ');
  });
});

describe('VM agents on your own hosts', () => {
  it('bind and advertise the declared address (go-sockaddr GetPrivateIP picks the first private address of the default-route interface: hashicorp/go-sockaddr ifaddr.go)', () => {
    const own = parseHcl(files.get('bundles/bank-on-premises/mainframe-bridge-1/files/etc/consul.d/consul.hcl')!);
    expect(own).toMatchObject({ bind_addr: '192.168.50.31', advertise_addr: '192.168.50.31' });
    // EC2 hosts have one interface and no declared address: the template stays
    const cloudInit = parse(files.get('stacks/bank-vms/hosts/server/cloud-init.yaml')!) as {
      write_files: { path: string; content: string }[];
    };
    const ec2 = parseHcl(cloudInit.write_files.find((f) => f.path === '/etc/consul.d/consul.hcl')!.content);
    expect(ec2).toMatchObject({ bind_addr: '{{ GetPrivateIP }}', advertise_addr: '{{ GetPrivateIP }}' });
  });

  it("list in each bundle README the ports of the security groups' table, WAN gossip among servers included", () => {
    const readme = files.get('bundles/bank-on-premises/consul-1/README.md')!;
    for (const line of inboundLines('server')) expect(readme).toContain(`- ${line}`);
    expect(readme).toContain('- from servers: 8300/tcp, 8301/tcp, 8301/udp, 8302/tcp, 8302/udp');
    expect(readme).toContain('- kubernetes: mgw.primary.bank.example.com:443 (TCP)');
    // AND the EC2 security groups come from the same table
    const rules = resources(hybrid.stack('bank-vms'), 'aws_vpc_security_group_ingress_rule')
      .filter((r) => r.referenced_security_group_id !== undefined)
      .map((r) => {
        const [, to] = String(r.security_group_id).match(/(server|client|gateway)SecurityGroup/)!;
        const [, from] = String(r.referenced_security_group_id).match(/(server|client|gateway)SecurityGroup/)!;
        return `${from}>${to} ${r.from_port}${r.to_port !== r.from_port ? `-${r.to_port}` : ''}/${r.ip_protocol}`;
      })
      .sort();
    const table = MESH_FLOWS.flatMap(([from, to, ports]) => ports.map((p) => `${from}>${to} ${portText(p)}`)).sort();
    expect(rules).toEqual(table);
    expect(rules).toEqual(expect.arrayContaining(['server>server 8302/tcp', 'server>server 8302/udp']));
  });

  it('say in each README what the secrets file holds for the role, and how to publish the gateway', () => {
    const server = files.get('bundles/bank-on-premises/consul-1/README.md')!;
    expect(server).toContain("the mesh's ACL replication token");
    expect(server).not.toContain('management token');
    expect(server).not.toContain('CA key, to issue');
    expect(files.get('bundles/bank-on-premises/mainframe-bridge-1/README.md')).toContain(
      'the certificate and key of the local HTTPS API (names localhost, 127.0.0.1 and ::1); the service token of mainframe-bridge.',
    );
    const gateway = files.get('bundles/bank-on-premises/gateway-1/README.md')!;
    expect(gateway).toContain('## 4. Publish the gateway');
    expect(gateway).toContain('only this network reaches it');
  });
});

describe('VM sidecar metrics', () => {
  it('give each sidecar of a host its own Prometheus port, clear of the upstreams and the other sidecars (the registration wins over proxy-defaults: hashicorp/consul v2.0.3 agent/configentry/merge_service_config.go)', () => {
    // GIVEN one host running two services, one of whose upstreams listens on the mesh's metrics port + 1
    const out = synth((app) => {
      const mesh = new Mesh(app, 'lab');
      const db = new Service(mesh, 'db', { port: 5432 });
      const api = new Service(mesh, 'api', { port: 9090 });
      const web = new Service(mesh, 'web', { port: 80 });
      web.addUpstream(api, { localBindPort: 20201 }).addUpstream(db, { localBindPort: 20200 });
      const dc = new VmDatacenter(mesh, 'onprem', { primary: true, hosts: ownHosts([web, api, db]) });
      for (const s of [db, api, web]) s.runsIn(dc);
    });
    const node = JSON.parse(
      fs.readFileSync(path.join(out.outdir, 'bundles/lab-onprem/c1/files/etc/meshform/node.json'), 'utf8'),
    ) as { services: { Name: string; Connect: { SidecarService: { Proxy: { Config: object } } } }[] };
    // THEN each registration sets its sidecar's envoy_prometheus_bind_addr, none taken twice or by an upstream
    expect(node.services.map((s) => [s.Name, s.Connect.SidecarService.Proxy.Config])).toEqual([
      ['web', { envoy_prometheus_bind_addr: '0.0.0.0:20202' }],
      ['api', { envoy_prometheus_bind_addr: '0.0.0.0:20203' }],
      ['db', { envoy_prometheus_bind_addr: '0.0.0.0:20204' }],
    ]);
  });

  it('open the metrics ports to the VPC on EC2 (where a Prometheus scrapes), on service hosts and gateways only', () => {
    const stack = synth((app) => awsVmPrimary(new Mesh(app, 'shop'))).stack('shop-vms');
    const metrics = resources(stack, 'aws_vpc_security_group_ingress_rule').filter((r) => r.from_port === 20200);
    expect(metrics.map((r) => [String(r.security_group_id).match(/(\w+)SecurityGroup/)![1], r.cidr_ipv4])).toEqual([
      ['client', '10.20.0.0/16'],
      ['gateway', '10.20.0.0/16'],
    ]);
  });
});
