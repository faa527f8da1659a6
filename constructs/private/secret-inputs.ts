/** Which secret a Terraform variable carries. */
export type SecretKind =
  | 'gossipKey'
  | 'aclBootstrapToken'
  | 'aclReplicationToken'
  | 'caBundle'
  | 'serverChain'
  | 'serverKey'
  | 'clientApiChain'
  | 'clientApiKey';

/** One secret that enters Terraform as a sensitive variable. */
export interface SecretInput {
  /** Which secret. */
  readonly kind: SecretKind;
  /** The datacenter it belongs to (TLS material), or none (shared by the mesh). */
  readonly datacenter?: string;
  /** Terraform variable name: `meshform_<mesh>[_<datacenter>]_<suffix>` (hyphens become underscores). */
  readonly variable: string;
  /** Variable description. */
  readonly description: string;
}

function snake(name: string): string {
  return name.replace(/-/g, '_');
}

/** The mesh's shared secrets (gossip key, ACL tokens); which stack gets which: `stackSecretInputs`. */
export function sharedSecretInputs(mesh: string): SecretInput[] {
  const stem = `meshform_${snake(mesh)}`;
  return [
    {
      kind: 'gossipKey',
      variable: `${stem}_gossip_key`,
      description: 'Consul gossip encryption key (base64, 32 bytes)',
    },
    {
      kind: 'aclBootstrapToken',
      variable: `${stem}_acl_bootstrap_token`,
      description: "ACL initial management token (the primary's stacks only)",
    },
    {
      kind: 'aclReplicationToken',
      variable: `${stem}_acl_replication_token`,
      description: 'ACL replication token (created by the primary, used by every secondary)',
    },
  ];
}

/** A datacenter as its secret variables see it: its name, and whether its client agents get a local API certificate. */
export interface SecretDatacenter {
  readonly name: string;
  /** VM datacenters: the certificate client agents serve their local HTTPS API with (see CLIENT_API_NAMES). */
  readonly clientApi?: boolean;
}

/**
 * One datacenter's TLS variables: the trust bundle (roots), its server certificate chain and key, and for a
 * VM datacenter the certificate chain and key of its client agents' local HTTPS API.
 */
export function datacenterSecretInputs(mesh: string, dc: SecretDatacenter): SecretInput[] {
  const datacenter = dc.name;
  const stem = `meshform_${snake(mesh)}_${snake(datacenter)}`;
  return [
    {
      kind: 'caBundle',
      datacenter,
      variable: `${stem}_ca_bundle`,
      description: `Trusted roots of ${datacenter}'s agent TLS (PEM)`,
    },
    {
      kind: 'serverChain',
      datacenter,
      variable: `${stem}_server_cert`,
      description: `Server certificate of ${datacenter} with its intermediate (PEM chain)`,
    },
    {
      kind: 'serverKey',
      datacenter,
      variable: `${stem}_server_key`,
      description: `Private key of ${datacenter}'s server certificate (PEM)`,
    },
    ...(dc.clientApi
      ? ([
          {
            kind: 'clientApiChain',
            datacenter,
            variable: `${stem}_client_api_cert`,
            description: `Certificate of ${datacenter}'s client agents' local HTTPS API with its intermediate (PEM chain)`,
          },
          {
            kind: 'clientApiKey',
            datacenter,
            variable: `${stem}_client_api_key`,
            description: `Private key of ${datacenter}'s client agents' local HTTPS API certificate (PEM)`,
          },
        ] as const)
      : []),
  ];
}

/**
 * The secret variables one datacenter's control-plane stack declares: the gossip key, the replication token,
 * its own TLS material, and on the primary only the management token (a secondary never holds it).
 */
export function stackSecretInputs(mesh: string, dc: SecretDatacenter, primary: boolean): SecretInput[] {
  return [
    ...sharedSecretInputs(mesh).filter((input) => primary || input.kind !== 'aclBootstrapToken'),
    ...datacenterSecretInputs(mesh, dc),
  ];
}

/** Every secret variable of a mesh, shared first, then per datacenter. */
export function secretInputs(mesh: string, datacenters: readonly SecretDatacenter[]): SecretInput[] {
  return [...sharedSecretInputs(mesh), ...datacenters.flatMap((dc) => datacenterSecretInputs(mesh, dc))];
}

/**
 * Terraform variable of a datacenter's secrets version: a counter the secret store bumps whenever a secret the
 * datacenter's stack holds changes (`SecretStore.secretsVersion`). Write-only arguments are never read back, so
 * this number in state is what tells Terraform to send them again. Not a secret.
 */
export function secretsVersionVariable(mesh: string, datacenter: string): string {
  return `meshform_${snake(mesh)}_${snake(datacenter)}_secrets_version`;
}
