import { aclPlan, deriveTokenUuid, roleSecrets } from '../constructs/private/acl';
import type { MeshManifest } from '../constructs/private/mesh-manifest';
import { CliError } from './output';
import { secretInputs } from '../constructs/private/secret-inputs';
import { SecretStore } from '../constructs/secret-store';

/** A shell single-quoted string. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** `export TF_VAR_<name>='<value>'` lines for every secret variable of the meshes. */
export function secretsAsShellExports(store: SecretStore, meshes: readonly MeshManifest[]): string {
  const lines: string[] = [];
  for (const mesh of meshes) {
    const secrets = store.ensure(mesh.mesh).secrets;
    for (const input of secretInputs(mesh.mesh)) {
      lines.push(`export TF_VAR_${input.variable}=${shellQuote(secrets[input.secret])}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/**
 * The secret variables as HCL assignments (heredocs for PEM), to paste into a Terraform Cloud variable set
 * as sensitive Terraform variables, or to pass to `terraform -var-file` from a protected location.
 */
export function secretsAsTfvars(store: SecretStore, meshes: readonly MeshManifest[]): string {
  const lines: string[] = [];
  for (const mesh of meshes) {
    const secrets = store.ensure(mesh.mesh).secrets;
    for (const input of secretInputs(mesh.mesh)) {
      const value = secrets[input.secret];
      if (value.includes('\n')) {
        lines.push(`${input.variable} = <<-EOT\n${value.trimEnd()}\nEOT`);
      } else {
        lines.push(`${input.variable} = ${JSON.stringify(value)}`);
      }
    }
  }
  return `${lines.join('\n')}\n`;
}

/**
 * The secrets file of one of your own hosts (`/etc/meshform/secrets.json` on the host): only what its role
 * needs, with the datacenter's ACL tokens derived from the mesh's management token.
 */
export function ownHostSecrets(store: SecretStore, mesh: MeshManifest, datacenter: string, host: string): string {
  const dc = mesh.datacenters.find((d) => d.name === datacenter);
  if (!dc) throw new CliError(`mesh "${mesh.mesh}" has no datacenter "${datacenter}"`);
  if (!dc.ownHosts) throw new CliError(`datacenter "${datacenter}" does not run on your own hosts: its hosts fetch their secrets themselves`);
  const entry = dc.ownHosts.find((h) => h.name === host);
  if (!entry) throw new CliError(`datacenter "${datacenter}" has no host "${host}" (hosts: ${dc.ownHosts.map((h) => h.name).join(', ')})`);
  const secrets = store.ensure(mesh.mesh).secrets;
  const plan = aclPlan(mesh.mesh, datacenter, dc.services ?? [], (label) => deriveTokenUuid(secrets.aclBootstrapToken, label));
  const role =
    entry.role === 'server'
      ? ({ kind: 'server' } as const)
      : entry.role === 'mesh-gateway'
        ? ({ kind: 'mesh-gateway' } as const)
        : ({ kind: 'client', services: entry.services } as const);
  const document = roleSecrets(role, plan, {
    caCertificate: secrets.serverCaCertificatePem,
    caPrivateKey: secrets.serverCaPrivateKeyPem,
    gossipKey: secrets.gossipKey,
    management: secrets.aclBootstrapToken,
  });
  return `${JSON.stringify(document, null, 2)}\n`;
}
