import type { MeshSecrets } from '../secret-store';

/** One secret of the store that enters Terraform as a sensitive variable. */
export interface SecretInput {
  /** Which secret of the store. */
  readonly secret: keyof MeshSecrets;
  /** Terraform variable name: `meshform_<mesh>_<suffix>` (hyphens become underscores). */
  readonly variable: string;
  /** Variable description. */
  readonly description: string;
}

const INPUTS: ReadonlyArray<Omit<SecretInput, 'variable'> & { readonly suffix: string }> = [
  {
    secret: 'serverCaCertificatePem',
    suffix: 'server_ca_cert',
    description: 'PEM certificate of the CA of Consul server and client TLS',
  },
  {
    secret: 'serverCaPrivateKeyPem',
    suffix: 'server_ca_key',
    description: 'PEM private key of the CA of Consul server and client TLS',
  },
  { secret: 'gossipKey', suffix: 'gossip_key', description: 'Consul gossip encryption key (base64, 32 bytes)' },
  {
    secret: 'aclBootstrapToken',
    suffix: 'acl_bootstrap_token',
    description: 'ACL initial management token of the primary, replication token of secondaries',
  },
];

/** The sensitive variables of a mesh, in a fixed order. Names only: values come from the secret store. */
export function secretInputs(mesh: string): SecretInput[] {
  const stem = `meshform_${mesh.replace(/-/g, '_')}`;
  return INPUTS.map(({ suffix, ...rest }) => ({ ...rest, variable: `${stem}_${suffix}` }));
}
