import { aclPlan, deriveTokenUuid, replicationRules, roleSecrets } from '../constructs/private/acl';
import { datacenterTls } from '../constructs/private/ca-material';
import { meshConfigEntries, toApiEntry } from '../constructs/private/config-entries';
import type { MeshManifest } from '../constructs/private/mesh-manifest';
import {
  SecretDatacenter,
  secretInputs,
  SecretKind,
  secretsVersionVariable,
  stackSecretInputs,
} from '../constructs/private/secret-inputs';
import { SecretStore } from '../constructs/secret-store';
import { CliError, MESHFORM } from './output';

/** A shell single-quoted string. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The value of every secret variable of a mesh: the shared secrets and each datacenter's TLS material
 * (trusted roots, server chain and key), and each datacenter's secrets version (which the store bumps when
 * one of them changes). The root keys are never among them.
 */
export function secretValues(store: SecretStore, mesh: MeshManifest): { variable: string; value: string }[] {
  const shared = store.ensure(mesh.mesh).secrets;
  const ca = store.ca(mesh.mesh);
  const tls = new Map(mesh.datacenters.map((dc) => [dc.name, datacenterTls(ca, mesh.ca.plan, dc.name)]));
  const secrets = secretInputs(mesh.mesh, secretDatacenters(mesh)).map((input) => {
    const t = input.datacenter ? tls.get(input.datacenter)! : undefined;
    const clientApi = () => {
      if (!t?.clientApi) throw noClientApiCertificate(input.datacenter!);
      return t.clientApi;
    };
    const values: { readonly [kind in SecretKind]: () => string } = {
      gossipKey: () => shared.gossipKey,
      aclBootstrapToken: () => shared.aclBootstrapToken,
      aclReplicationToken: () => shared.aclReplicationToken,
      caBundle: () => t!.caBundle,
      serverChain: () => t!.serverChain,
      serverKey: () => t!.serverKey,
      clientApiChain: () => clientApi().chainPem,
      clientApiKey: () => clientApi().keyPem,
    };
    return { variable: input.variable, value: values[input.kind]() };
  });
  // each datacenter's secrets version: what its stacks' write-only arguments are versioned by
  const value = new Map(secrets.map((s) => [s.variable, s.value]));
  const versions = secretDatacenters(mesh).map((dc) => {
    const held = stackSecretInputs(mesh.mesh, dc, true).map((input) => value.get(input.variable)!);
    return {
      variable: secretsVersionVariable(mesh.mesh, dc.name),
      value: String(store.secretsVersion(mesh.mesh, dc.name, held)),
    };
  });
  return [...secrets, ...versions];
}

/**
 * Records each datacenter's secrets version for what the store holds now. Called where the store is written (a
 * synthesis that issues, `ca rotate`), so that a run that only reads the store (a pipeline) finds every version
 * recorded and never needs to write.
 */
export function settleSecretsVersions(store: SecretStore, mesh: MeshManifest): void {
  secretValues(store, mesh);
}

function noClientApiCertificate(datacenter: string): CliError {
  return new CliError(`no client API certificate of ${datacenter} in the store: run ${MESHFORM} synth to issue it`);
}

/** The mesh's datacenters as their secret variables see them (which get a client API certificate). */
function secretDatacenters(mesh: MeshManifest): SecretDatacenter[] {
  return mesh.datacenters.map((dc) => ({
    name: dc.name,
    clientApi: mesh.ca.requests.find((r) => r.datacenter === dc.name)?.clientApi,
  }));
}

/** Every secret variable of the meshes and its value, as Terraform's environment takes them. */
export function secretVariables(store: SecretStore, meshes: readonly MeshManifest[]): { [variable: string]: string } {
  return Object.fromEntries(meshes.flatMap((mesh) => secretValues(store, mesh).map((s) => [s.variable, s.value])));
}

/** `export TF_VAR_<name>='<value>'` lines for every secret variable of the meshes. */
export function secretsAsShellExports(store: SecretStore, meshes: readonly MeshManifest[]): string {
  const lines = meshes.flatMap((mesh) =>
    secretValues(store, mesh).map(({ variable, value }) => `export TF_VAR_${variable}=${shellQuote(value)}`),
  );
  return `${lines.join('\n')}\n`;
}

/**
 * The secret variables as HCL assignments (heredocs for PEM), to paste into a Terraform Cloud variable set
 * as sensitive Terraform variables, or to pass to `terraform -var-file` from a protected location.
 */
export function secretsAsTfvars(store: SecretStore, meshes: readonly MeshManifest[]): string {
  const lines = meshes.flatMap((mesh) =>
    secretValues(store, mesh).map(({ variable, value }) =>
      value.includes('\n') ? `${variable} = <<-EOT\n${value.trimEnd()}\nEOT` : `${variable} = ${JSON.stringify(value)}`,
    ),
  );
  return `${lines.join('\n')}\n`;
}

/**
 * The secrets file of one of your own hosts (`/etc/meshform/secrets.json` on the host): only what its role
 * needs, with the datacenter's ACL tokens derived from the mesh's replication token.
 */
export function ownHostSecrets(store: SecretStore, mesh: MeshManifest, datacenter: string, host: string): string {
  const dc = mesh.datacenters.find((d) => d.name === datacenter);
  if (!dc) throw new CliError(`mesh "${mesh.mesh}" has no datacenter "${datacenter}"`);
  if (!dc.ownHosts)
    throw new CliError(
      `datacenter "${datacenter}" does not run on your own hosts: its hosts fetch their secrets themselves`,
    );
  const entry = dc.ownHosts.find((h) => h.name === host);
  if (!entry)
    throw new CliError(
      `datacenter "${datacenter}" has no host "${host}" (hosts: ${dc.ownHosts.map((h) => h.name).join(', ')})`,
    );
  const secrets = store.ensure(mesh.mesh).secrets;
  const tls = datacenterTls(store.ca(mesh.mesh), mesh.ca.plan, datacenter);
  const plan = aclPlan(
    mesh.mesh,
    datacenter,
    dc.services ?? [],
    (label) => deriveTokenUuid(secrets.aclReplicationToken, label),
    dc.primary ? { secretId: secrets.aclReplicationToken, rules: replicationRules(mesh.datacenters) } : undefined,
  );
  const role =
    entry.role === 'server'
      ? ({ kind: 'server' } as const)
      : entry.role === 'mesh-gateway'
        ? ({ kind: 'mesh-gateway' } as const)
        : ({ kind: 'client', services: entry.services } as const);
  if (role.kind !== 'server' && !tls.clientApi) throw noClientApiCertificate(datacenter);
  const configEntries =
    role.kind === 'server' && dc.primary ? meshConfigEntries(mesh.services, mesh.traffic).map(toApiEntry) : undefined;
  const document = roleSecrets(
    role,
    plan,
    {
      caBundle: tls.caBundle,
      serverCertificate: tls.serverChain,
      serverKey: tls.serverKey,
      ...(tls.clientApi ? { clientApi: { certificate: tls.clientApi.chainPem, key: tls.clientApi.keyPem } } : {}),
      gossipKey: secrets.gossipKey,
      aclAdmin: dc.primary ? { management: secrets.aclBootstrapToken } : { replication: secrets.aclReplicationToken },
    },
    configEntries,
  );
  return `${JSON.stringify(document, null, 2)}\n`;
}
