import * as fs from 'node:fs';
import * as path from 'node:path';
import { Construct } from 'constructs';
import { type ISynthesisSession, TerraformOutput } from '../constructs/private/engine';
import { nodeFiles, PATHS, enabledUnits } from '../constructs/private/vm-node';
import type { HostGroup, VmDatacenter } from '../constructs/vm-datacenter';
import { MeshStack } from './mesh-stack';

/** Props of an OwnHostsStack. */
export interface OwnHostsStackProps {
  /** The datacenter the stack describes. */
  readonly datacenter: VmDatacenter;
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
  constructor(scope: Construct, id: string, props: OwnHostsStackProps) {
    const dc = props.datacenter;
    super(scope, id, { mesh: dc.mesh, backend: dc.backend });
    this.renderHosts = () =>
      dc.hostGroups(() => ({ source: 'file', path: OWN_HOST_SECRETS }), dc.meshGateway.wanEndpoint);
    new TerraformOutput(this, 'bundles', {
      value: `bundles/${id}`,
      description: 'Install bundles of the datacenter hosts, under the synth output directory',
    });
  }

  private readonly renderHosts: () => HostGroup[];

  protected override onSynthesized(session: ISynthesisSession): void {
    const root = path.join(session.outdir, 'bundles', this.node.id);
    fs.rmSync(root, { recursive: true, force: true });
    for (const group of this.renderHosts()) writeBundle(path.join(root, group.name), group, this.node.id);
  }
}

function writeBundle(dir: string, group: HostGroup, stack: string): void {
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
    `systemctl enable --now ${enabledUnits(spec).join(' ')}`,
    `echo "meshform: ${group.name} is up; check with: systemctl status consul"`,
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'install.sh'), install, { mode: 0o755 });
  const services = spec.services.map((s) => `${s.name} (port ${s.port}, Envoy sidecar)`).join(', ');
  const readme = [
    `# Host ${group.name}: ${group.role} of ${spec.mesh}/${spec.datacenter}`,
    '',
    `Address: ${group.host?.address ?? ''}. ${services ? `Services: ${services}.` : ''}`,
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
    `  | ssh root@${group.host?.address ?? group.name} 'install -D -m 0600 /dev/stdin ${OWN_HOST_SECRETS}'`,
    '```',
    '',
    `It holds only what a ${group.role} needs${group.role === 'server' ? ' (servers also get the CA key, to issue their own certificate, and the management token)' : ''}.`,
    '',
    '## 2. Install',
    '',
    '```sh',
    `scp -r ${group.name} root@${group.host?.address ?? group.name}:/root/meshform-bundle`,
    `ssh root@${group.host?.address ?? group.name} /root/meshform-bundle/install.sh`,
    '```',
    '',
    `Requirements: Linux with systemd and python3, outbound HTTPS to the release sites (or a mirror), and the`,
    `Consul ports open between the datacenter's hosts (8300, 8301 tcp/udp, 8443 to gateways, 21000-21255 to service hosts).`,
    `Generated by meshform from stack ${stack}; regenerate with meshform synth rather than editing.`,
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'README.md'), readme);
}
