import * as fs from 'node:fs';
import * as path from 'node:path';
import { Construct } from 'constructs';
import { type ISynthesisSession, TerraformOutput } from '../constructs/private/engine';
import {
  enabledUnits,
  GATEWAY_LISTEN_PORT,
  HostGroup,
  nodeFiles,
  PATHS,
  sidecarMetricsPorts,
} from '../constructs/private/vm-node';
import { inboundLines, VmRole } from '../constructs/private/vm-ports';
import { MeshStack, MeshStackProps } from './mesh-stack';

/** Props of an OwnHostsStack. */
export interface OwnHostsStackProps extends MeshStackProps {
  /** What the bundles hold; read at synthesis, when the whole mesh is known. */
  readonly bundles: () => OwnHostsBundles;
}

/** What the install bundles of a datacenter on your own hosts are made of. */
export interface OwnHostsBundles {
  /** Consul datacenter name. */
  readonly datacenter: string;
  /** Whether it is the mesh's primary. */
  readonly primary: boolean;
  /** One group per host, with its address and node spec. */
  readonly hosts: readonly HostGroup[];
  /** The datacenter's mesh gateway as other datacenters dial it. */
  readonly gateway: BundleGateway;
  /** The mesh's other datacenters, whose gateways the hosts dial. */
  readonly otherDatacenters: readonly (BundleGateway & { readonly name: string; readonly primary: boolean })[];
}

/** A mesh gateway as a bundle's README describes it. */
export interface BundleGateway {
  /**
   * Declared address.
   * @default - none: the platform assigns one
   */
  readonly address?: string;
  /** Port other datacenters dial. */
  readonly wanPort: number;
  /**
   * `address:port` other datacenters dial.
   * @default - none: the platform assigns one
   */
  readonly wanEndpoint?: string;
}

/** Where a host reads the secrets file its operator delivers. */
export const OWN_HOST_SECRETS = '/etc/meshform/secrets.json';

/**
 * The stack of a VM datacenter on your own hosts. Terraform creates nothing there: the stack carries the
 * datacenter's place in the deploy order and outputs, and its synthesis writes one install bundle per host
 * to `<outdir>/bundles/<stack>/<host>/` (agent config, systemd units, install script, README). Secrets are
 * never in a bundle: the operator delivers each host's secrets file with `meshform secrets host`.
 */
export class OwnHostsStack extends MeshStack {
  private readonly bundles: () => OwnHostsBundles;

  constructor(scope: Construct, id: string, props: OwnHostsStackProps) {
    super(scope, id, props);
    this.bundles = props.bundles;
    new TerraformOutput(this, 'bundles', {
      value: `bundles/${id}`,
      description: 'Install bundles of the datacenter hosts, under the synth output directory',
    });
  }

  protected override onSynthesized(session: ISynthesisSession): void {
    const root = path.join(session.outdir, 'bundles', this.node.id);
    fs.rmSync(root, { recursive: true, force: true });
    const dc = this.bundles();
    for (const group of dc.hosts) writeBundle(path.join(root, group.name), group, dc, this.node.id);
  }
}

function writeBundle(dir: string, group: HostGroup, dc: OwnHostsBundles, stack: string): void {
  const spec = group.spec;
  for (const file of nodeFiles(spec)) {
    const target = path.join(dir, 'files', file.path);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, file.content, { mode: Number.parseInt(file.mode, 8) });
  }
  const install = [
    '#!/usr/bin/env bash',
    `# meshform install bundle of host ${group.name} (${group.role}) in ${spec.mesh}/${spec.datacenter}.`,
    '# Run as root on the host, from this directory, after its secrets file has been delivered (see README.md).',
    'set -euo pipefail',
    'cd "$(dirname "$0")"',
    '[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }',
    'command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }',
    'command -v systemctl >/dev/null || { echo "systemd is required" >&2; exit 1; }',
    `[ -s ${OWN_HOST_SECRETS} ] || { echo "${OWN_HOST_SECRETS} is missing: deliver it first (README.md)" >&2; exit 1; }`,
    'getent group consul >/dev/null || groupadd --system consul',
    'id consul >/dev/null 2>&1 || useradd --system --gid consul --home-dir /opt/consul --no-create-home --shell /usr/sbin/nologin consul',
    'cp -R files/. /',
    `chmod 0755 ${PATHS.nodeScript}`,
    `${PATHS.nodeScript} install`,
    'systemctl daemon-reload',
    // consul.service is ready only once it joined its peers: the other hosts may not be installed yet
    `systemctl enable --now --no-block ${enabledUnits(spec).join(' ')}`,
    `echo "meshform: ${group.name} is starting; it is up once it joined its peers: systemctl status consul"`,
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'install.sh'), install, { mode: 0o755 });
  const address = group.address!;
  const services = spec.services.map((s) => `${s.name} (port ${s.port}, Envoy sidecar)`).join(', ');
  const readme = [
    `# Host ${group.name}: ${group.role} of ${spec.mesh}/${spec.datacenter}`,
    '',
    `Address: ${address} (the agent binds and advertises it).${services ? ` Services: ${services}.` : ''}`,
    `Installs Consul ${spec.artifacts.map((a) => `${a.name} ${a.version}`).join(' and ')} (SHA-256 verified before install),`,
    'the agent configuration, and these systemd units:',
    '',
    ...enabledUnits(spec).map((u) => `- ${u}`),
    '',
    '## 1. Deliver the secrets (never part of this bundle)',
    '',
    "From the machine that holds the mesh's secret store, pipe the host's secrets straight to it:",
    '',
    '```sh',
    `npx meshform secrets host --mesh ${spec.mesh} --datacenter ${spec.datacenter} --host ${group.name} \\`,
    `  | ssh root@${address} 'install -D -m 0600 /dev/stdin ${OWN_HOST_SECRETS}'`,
    '```',
    '',
    `It holds only what a ${group.role} needs: ${secretsContent(group, dc)}`,
    'No CA key is in it: meshform issued the certificates.',
    '',
    '## 2. Install',
    '',
    '```sh',
    `scp -r ${group.name} root@${address}:/root/meshform-bundle`,
    `ssh root@${address} /root/meshform-bundle/install.sh`,
    '```',
    '',
    'Requirements: Linux with systemd and python3, and outbound HTTPS to the release sites (or a mirror).',
    '',
    '## 3. Network',
    '',
    `Open on this host (from the datacenter's other hosts):`,
    '',
    ...inboundLines(ownRole(group.role)).map((l) => `- ${l}`),
    ...networkNotes(group, dc),
    ...(group.role === 'mesh-gateway' ? ['', '## 4. Publish the gateway', '', ...publishGateway(group, dc)] : []),
    '',
    `Generated by meshform from stack ${stack}; regenerate with meshform synth rather than editing.`,
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'README.md'), readme);
}

function ownRole(role: HostGroup['role']): VmRole {
  return role === 'mesh-gateway' ? 'gateway' : role;
}

/** What the secrets file of a host of this role holds (as `meshform secrets host` writes it). */
function secretsContent(group: HostGroup, dc: OwnHostsBundles): string {
  const common = "the mesh's trusted roots (`ca_bundle`), the gossip key and this host's agent token";
  if (group.role === 'server') {
    const admin = dc.primary
      ? "the mesh's ACL management token (the servers' initial management token; only the primary's servers get it)"
      : "the mesh's ACL replication token (the servers' replication token, with which they also create ACL tokens)";
    const replication = dc.primary ? " and of the mesh's replication token" : '';
    const entries = dc.primary ? "; the mesh's config entries, which the servers apply" : '';
    return (
      `${common}; ${dc.datacenter}'s server certificate chain and its private key; ${admin}; the ACL policies and ` +
      `tokens the servers create, with the secret id of every agent, gateway and service token of ${dc.datacenter}` +
      `${replication}${entries}.`
    );
  }
  const local = 'the certificate and key of the local HTTPS API (names localhost, 127.0.0.1 and ::1)';
  return group.role === 'mesh-gateway'
    ? `${common}; ${local}; the mesh gateway's token.`
    : `${common}; ${local}; the service token of ${group.spec.services.map((s) => s.name).join(', ')}.`;
}

/** Outbound rules and metrics ports of a host, from the same facts as the EC2 security groups. */
function networkNotes(group: HostGroup, dc: OwnHostsBundles): string[] {
  const others = dc.otherDatacenters;
  const endpoint = (d: (typeof others)[number]) =>
    d.wanEndpoint ?? `the address ${d.name}'s platform assigns, port ${d.wanPort}`;
  const lines: string[] = [];
  const dials = group.role === 'mesh-gateway' ? others : group.role === 'server' ? others.filter((d) => d.primary) : [];
  if (dials.length > 0) {
    lines.push(
      '',
      `Allow out to the other datacenters' mesh gateways (${group.role === 'server' ? "the primary's, until federation is up" : 'every one'}):`,
      '',
    );
    lines.push(...dials.map((d) => `- ${d.name}: ${endpoint(d)} (TCP)`));
  }
  const metrics = group.spec.metrics;
  const ports =
    group.role === 'client'
      ? sidecarMetricsPorts(group.spec.services, metrics.port)
      : group.role === 'mesh-gateway'
        ? [metrics.port]
        : [];
  if (ports.length > 0 && !metrics.ip.startsWith('127.'))
    lines.push(
      '',
      `Envoy Prometheus metrics on ${metrics.ip}: ${ports.map((p) => `${p}/tcp`).join(', ')} (open to your Prometheus only).`,
    );
  return lines;
}

/** How the gateway becomes reachable at the declared address. */
function publishGateway(group: HostGroup, dc: OwnHostsBundles): string[] {
  const wan = dc.gateway.wanEndpoint;
  const local = `${group.address!}:${GATEWAY_LISTEN_PORT}`;
  if (!wan) {
    return [
      `${dc.datacenter} declares no gateway address, so the gateway registers ${local} and only this network reaches it:`,
      'set `meshGateway: { address }` on the datacenter for other datacenters to federate with it.',
    ];
  }
  return [
    `The gateway listens on ${local} and registers ${wan} as the address other datacenters dial`,
    '(`-wan-address`). Make that address reach it:',
    '',
    `- DNS: ${dc.gateway.address} resolves to this host or to the public address in front of it;`,
    `- forward TCP ${dc.gateway.wanPort} on that address to ${local} (your firewall, NAT or load balancer, TCP passthrough: the gateway routes by TLS SNI);`,
    "- allow inbound from the other datacenters' gateways and servers (their egress addresses).",
  ];
}
