import { createHash } from 'node:crypto';

/**
 * The ACL tokens of a VM datacenter are derived from the mesh's management token, so that neither the store
 * nor Terraform has to keep one secret per agent, service and gateway, and so that Terraform (AWS hosts) and
 * the CLI (your own hosts) derive the same values:
 *
 *     uuid4-shaped( sha256("<management token>/meshform/<label>") )
 *
 * Knowing a derived token reveals nothing of the management token or of other labels. The servers of the
 * datacenter create the tokens (with these accessor and secret ids) at first start.
 */
export function deriveTokenUuid(management: string, label: string): string {
  const h = createHash('sha256').update(`${management}/meshform/${label}`).digest('hex');
  const variant = '89ab'[parseInt(h[16]!, 16) % 4];
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * The mesh's ACL replication token, derived from the management token: the primary creates it (with the
 * least privilege replication needs) and every secondary uses it, so no secondary holds the management token.
 */
export function replicationToken(management: string): string {
  return deriveTokenUuid(management, REPLICATION_LABEL);
}

/** The label of the replication token's derivation from the management token. */
export const REPLICATION_LABEL = 'secret:replication';

/** The name of the replication token's policy (global: ACL policies live in the primary). */
export const REPLICATION_POLICY = 'meshform-acl-replication';

/**
 * The rules of the replication token as Consul documents them for a secondary's servers
 * (hashicorp/consul website/content/docs/secure/acl/token/replication.mdx): `acl:write` to replicate ACL
 * tokens (and, for meshform-node on a VM secondary's servers, to create the datacenter's policies and
 * tokens: global ones are written in the primary), `operator:write` to replicate proxy-defaults and sign the
 * secondary's CA, `service:read` and `intention:read` to replicate service-defaults and intentions.
 */
export const REPLICATION_RULES =
  'acl = "write"\noperator = "write"\nservice_prefix "" {\n  policy = "read"\n  intentions = "read"\n}\n';

/**
 * The same grants plus what a Kubernetes secondary does with the token (hashicorp/consul-k8s v2.0.3
 * control-plane/subcommand/server-acl-init/rules.go, aclReplicationRules): its servers also use it as their
 * agent token (node write) and server-acl-init reads the agent (agent read). Used when the mesh has a
 * Kubernetes secondary; a Kubernetes primary's chart creates the token with these rules itself.
 */
export const KUBERNETES_REPLICATION_RULES =
  'acl = "write"\noperator = "write"\nagent_prefix "" {\n  policy = "read"\n}\nnode_prefix "" {\n  policy = "write"\n}\n' +
  'service_prefix "" {\n  policy = "write"\n  intentions = "read"\n}\n';

/**
 * The replication policy's rules for a mesh: Consul's documented least privilege, or consul-k8s's when a
 * Kubernetes secondary will use the token too.
 */
export function replicationRules(
  datacenters: readonly { readonly platform: string; readonly primary: boolean }[],
): string {
  return datacenters.some((d) => !d.primary && d.platform === 'kubernetes')
    ? KUBERNETES_REPLICATION_RULES
    : REPLICATION_RULES;
}

/** The replication token as a VM primary's servers create it: its secret id and the rules its policy grants. */
export interface ReplicationGrant {
  readonly secretId: string;
  readonly rules: string;
}

/** Derives accessor and secret ids, in TypeScript or as Terraform expressions. */
export type Deriver = (label: string) => string;

/** A policy the datacenter's servers create. */
export interface AclPolicy {
  readonly Name: string;
  readonly Description: string;
  readonly Rules: string;
}

/** A token the datacenter's servers create (Consul's API shape). */
export interface AclToken {
  readonly AccessorID: string;
  readonly SecretID: string;
  readonly Description: string;
  readonly Local: false;
  readonly Policies?: readonly { readonly Name: string }[];
  readonly ServiceIdentities?: readonly { readonly ServiceName: string; readonly Datacenters: readonly string[] }[];
}

/** What one datacenter's ACL plan holds. */
export interface AclPlan {
  readonly policies: AclPolicy[];
  readonly tokens: { readonly file: string; readonly token: AclToken }[];
}

const AGENT_RULES = 'node_prefix "" {\n  policy = "write"\n}\nservice_prefix "" {\n  policy = "read"\n}\n';
const MESH_GATEWAY_RULES =
  'mesh = "write"\nservice "mesh-gateway" {\n  policy = "write"\n}\nservice_prefix "" {\n  policy = "read"\n}\n' +
  'node_prefix "" {\n  policy = "read"\n}\nagent_prefix "" {\n  policy = "read"\n}\n';

/**
 * The policies and tokens of a VM datacenter: one agent token (node write, service read), one token per
 * service (a service identity scoped to the datacenter) and one for the mesh gateway (Consul's documented
 * mesh gateway permissions); on the primary also the mesh's replication token (its secret id given, its
 * accessor id derived like the others). `file` is the token's file name under /etc/meshform/tokens on the
 * hosts (the replication token is not written to any host file: only its secret id travels in the plan).
 */
export function aclPlan(
  mesh: string,
  datacenter: string,
  services: readonly string[],
  derive: Deriver,
  replication?: ReplicationGrant,
): AclPlan {
  const agentPolicy = `meshform-${datacenter}-agent`;
  const gatewayPolicy = `meshform-${datacenter}-mesh-gateway`;
  const token = (label: string, description: string, grant: Partial<AclToken>): AclToken => ({
    AccessorID: derive(`accessor:${label}`),
    SecretID: derive(`secret:${label}`),
    Description: `meshform ${mesh}/${datacenter} ${description}`,
    Local: false,
    ...grant,
  });
  return {
    policies: [
      { Name: agentPolicy, Description: `meshform: Consul agents of ${datacenter}`, Rules: AGENT_RULES },
      { Name: gatewayPolicy, Description: `meshform: mesh gateways of ${datacenter}`, Rules: MESH_GATEWAY_RULES },
      ...(replication
        ? [{ Name: REPLICATION_POLICY, Description: `meshform: ACL replication of ${mesh}`, Rules: replication.rules }]
        : []),
    ],
    tokens: [
      { file: 'agent', token: token(`agent:${datacenter}`, 'agent token', { Policies: [{ Name: agentPolicy }] }) },
      {
        file: 'mesh-gateway',
        token: token(`mesh-gateway:${datacenter}`, 'mesh gateway token', { Policies: [{ Name: gatewayPolicy }] }),
      },
      ...services.map((service) => ({
        file: `service-${service}`,
        token: token(`service:${datacenter}:${service}`, `service token of ${service}`, {
          ServiceIdentities: [{ ServiceName: service, Datacenters: [datacenter] }],
        }),
      })),
      ...(replication
        ? [
            {
              file: 'replication',
              token: {
                AccessorID: derive('accessor:replication'),
                SecretID: replication.secretId,
                Description: `meshform ${mesh} ACL replication token`,
                Local: false as const,
                Policies: [{ Name: REPLICATION_POLICY }],
              },
            },
          ]
        : []),
    ],
  };
}

/** The secret material a datacenter's hosts need (values or Terraform expressions). */
export interface SharedSecretValues {
  /** Trusted roots of agent TLS. */
  readonly caBundle: string;
  /** The datacenter's server certificate chain and key (servers only). */
  readonly serverCertificate: string;
  readonly serverKey: string;
  /** The certificate (chain) and key client agents serve their local HTTPS API with (clients and gateways). */
  readonly clientApi?: { readonly certificate: string; readonly key: string };
  readonly gossipKey: string;
  /**
   * The servers' ACL administration token: the management token on the primary (their initial management
   * token), the replication token on a secondary (their replication token). A secondary never gets the former.
   */
  readonly aclAdmin: { readonly management: string } | { readonly replication: string };
}

/**
 * The secrets document one role's hosts read at boot (from Secrets Manager or a delivered file): only what
 * the role needs. Servers get the datacenter's server certificate and key (issued by meshform: no CA key
 * ever reaches a host), their ACL administration token (`tokens.management` on the primary,
 * `tokens.replication` on a secondary) and the ACL plan; a service host gets the local API certificate and its
 * own service tokens; a gateway the local API certificate and its gateway token.
 */
export function roleSecrets(
  role:
    | { readonly kind: 'server' }
    | { readonly kind: 'mesh-gateway' }
    | { readonly kind: 'client'; readonly services: readonly string[] },
  plan: AclPlan,
  values: SharedSecretValues,
  configEntries?: readonly object[],
): object {
  const secretOf = (file: string) => plan.tokens.find((t) => t.file === file)!.token.SecretID;
  const base = { format: 3, ca_bundle: values.caBundle, gossip_key: values.gossipKey };
  const clientApi = () => {
    if (!values.clientApi) throw new Error(`internal: the ${role.kind} hosts need the client API certificate`);
    return { client_api_cert: values.clientApi.certificate, client_api_key: values.clientApi.key };
  };
  switch (role.kind) {
    case 'server':
      return {
        ...base,
        server_cert: values.serverCertificate,
        server_key: values.serverKey,
        tokens: { agent: secretOf('agent'), ...values.aclAdmin },
        acl: { policies: plan.policies, tokens: plan.tokens.map((t) => t.token) },
        // primary servers: the mesh's config entries, applied through the API (meshform-node config-entries)
        ...(configEntries ? { config_entries: configEntries } : {}),
      };
    case 'mesh-gateway':
      return {
        ...base,
        ...clientApi(),
        tokens: { agent: secretOf('agent'), 'mesh-gateway': secretOf('mesh-gateway') },
      };
    case 'client':
      return {
        ...base,
        ...clientApi(),
        tokens: {
          agent: secretOf('agent'),
          ...Object.fromEntries(role.services.map((s) => [`service-${s}`, secretOf(`service-${s}`)])),
        },
      };
  }
}
