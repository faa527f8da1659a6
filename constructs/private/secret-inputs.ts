/** Which secret a Terraform variable carries. */
export type SecretKind = 'gossipKey' | 'aclBootstrapToken' | 'caBundle' | 'serverChain' | 'serverKey';

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

/** The variables every datacenter stack of a mesh has: the shared secrets. */
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
      description: 'ACL initial management token of the primary, replication token of secondaries',
    },
  ];
}

/** One datacenter's TLS variables: the trust bundle (roots), its server certificate chain and key. */
export function datacenterSecretInputs(mesh: string, datacenter: string): SecretInput[] {
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
  ];
}

/** Every secret variable of a mesh, shared first, then per datacenter. */
export function secretInputs(mesh: string, datacenters: readonly string[]): SecretInput[] {
  return [...sharedSecretInputs(mesh), ...datacenters.flatMap((dc) => datacenterSecretInputs(mesh, dc))];
}
