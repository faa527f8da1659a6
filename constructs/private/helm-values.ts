import { stringify } from 'yaml';

/**
 * The chart's full name (`global.name`): every chart object is `<name>-...`, e.g. the servers' Service
 * `consul-server`, whatever the release is called (consul-k8s v2.0.3 templates/_helpers.tpl, `consul.fullname`).
 */
export const CHART_FULLNAME = 'consul';

/** A reference to one key of a Kubernetes secret. */
export interface SecretKeyRef {
  readonly secretName: string;
  readonly secretKey: string;
}

/** The Kubernetes secrets the chart reads, created by meshform before the release. */
export interface ConsulSecretRefs {
  /** The trusted roots of agent TLS. */
  readonly caBundle: SecretKeyRef;
  /** A kubernetes.io/tls secret: the datacenter's server certificate chain and key. */
  readonly serverCertSecret: string;
  readonly gossipKey: SecretKeyRef;
  /** The primary's ACL bootstrap (initial management) token; a secondary's replication token. */
  readonly aclToken: SecretKeyRef;
  /** Primary only: the replication token the primary creates (with this SecretID) for its secondaries. */
  readonly aclReplicationToken?: SecretKeyRef;
  /** A secret with the service mesh CA provider's files (public, e.g. Vault's TLS CA), mounted, not loaded. */
  readonly caProviderSecret?: string;
}

/** Everything the consul-k8s values depend on. */
export interface ConsulHelmValuesInput {
  readonly datacenter: string;
  readonly domain: string;
  readonly consulImage: string;
  readonly controlPlaneImage: string;
  readonly servers: number;
  readonly primary: boolean;
  readonly primaryDatacenter: string;
  /** `host:port` of the primary's gateways (secondaries). */
  readonly primaryGateways: readonly string[];
  /** URL of this cluster's API server as the primary's servers reach it (secondaries). */
  readonly kubernetesApiUrl?: string;
  /** StorageClass of the servers' volumes (EKS clusters meshform creates: the class it creates). */
  readonly storageClass?: string;
  readonly secrets: ConsulSecretRefs;
  /** The servers' `connect` agent configuration: the service mesh CA provider and lifetimes. */
  readonly connect: object;
  readonly meshGateway: {
    readonly replicas: number;
    readonly serviceType: string;
    readonly port: number;
    readonly nodePort?: number;
    readonly address?: string;
    readonly annotations: { readonly [key: string]: string };
  };
}

/**
 * Agent configuration every server loads last (`server.extraConfig`): the security settings written out,
 * so that they hold whatever a chart version's defaults are. They match what the chart sets when TLS and
 * ACLs are managed by it; HTTPS API clients are authenticated by ACL tokens, so `verify_incoming` is on for
 * internal RPC and not for the HTTPS API (the chart's own choice).
 */
export function serverSecurityConfig(): object {
  return {
    acl: {
      enabled: true,
      default_policy: 'deny',
      down_policy: 'extend-cache',
      enable_token_persistence: true,
    },
    auto_encrypt: { allow_tls: true },
    encrypt_verify_incoming: true,
    encrypt_verify_outgoing: true,
    tls: {
      defaults: { verify_outgoing: true },
      internal_rpc: { verify_incoming: true, verify_server_hostname: true },
    },
  };
}

/** Everything the servers load last (`server.extraConfig`): the security settings and the mesh CA. */
export function serverExtraConfig(connect: object): object {
  return { ...serverSecurityConfig(), connect };
}

/** The consul-k8s chart values for one datacenter, every security setting written out. */
export function consulHelmValues(input: ConsulHelmValuesInput) {
  const { secrets, meshGateway } = input;
  // The primary leaves primaryDatacenter out (consul-k8s v2.0.3 acceptance/tests/wan-federation): with it set, the
  // injector and the mesh gateway log in through `<name>-k8s-component-auth-method-<dc>` in that datacenter
  // (templates/connect-inject-deployment.yaml, mesh-gateway-deployment.yaml), which server-acl-init creates only
  // in secondaries (control-plane/subcommand/server-acl-init/command.go). Consul then takes its own datacenter
  // as primary (hashicorp/consul agent/config/builder.go).
  const federation = input.primary
    ? { enabled: true, createFederationSecret: false }
    : {
        enabled: true,
        createFederationSecret: false,
        primaryDatacenter: input.primaryDatacenter,
        primaryGateways: [...input.primaryGateways],
        k8sAuthMethodHost: input.kubernetesApiUrl,
      };
  // The primary creates the replication token with the SecretID meshform derived (createReplicationToken together
  // with replicationToken: server-acl-init's createACLWithSecretID); secondaries replicate with it, and the chart
  // makes it their servers' agent token too (templates/server-statefulset.yaml).
  const created = secrets.aclReplicationToken;
  if (input.primary && !created) throw new Error('internal: the primary has no replication token secret');
  const acls =
    input.primary && created
      ? {
          manageSystemACLs: true,
          createReplicationToken: true,
          bootstrapToken: { ...secrets.aclToken },
          replicationToken: { ...created },
        }
      : { manageSystemACLs: true, createReplicationToken: false, replicationToken: { ...secrets.aclToken } };

  const wanAddress =
    meshGateway.address !== undefined
      ? { source: 'Static', static: meshGateway.address, port: meshGateway.nodePort ?? meshGateway.port }
      : { source: 'Service', port: meshGateway.port };

  return {
    global: {
      enabled: true,
      name: CHART_FULLNAME,
      datacenter: input.datacenter,
      domain: input.domain,
      image: input.consulImage,
      imageK8S: input.controlPlaneImage,
      tls: {
        enabled: true,
        enableAutoEncrypt: true,
        verify: true,
        httpsOnly: true,
        // The trust bundle holds only roots: servers present their intermediate in their chain, and no CA key
        // enters the cluster (the server certificate is issued by meshform).
        caCert: { ...secrets.caBundle },
      },
      gossipEncryption: {
        autoGenerate: false,
        secretName: secrets.gossipKey.secretName,
        secretKey: secrets.gossipKey.secretKey,
      },
      acls,
      federation,
      metrics: {
        enabled: true,
        enableAgentMetrics: true,
        agentMetricsRetentionTime: '1m',
        enableGatewayMetrics: true,
      },
    },
    server: {
      enabled: true,
      replicas: input.servers,
      bootstrapExpect: input.servers,
      connect: true,
      disruptionBudget: { enabled: input.servers > 1, maxUnavailable: 1 },
      serverCert: { secretName: secrets.serverCertSecret },
      ...(input.storageClass !== undefined ? { storageClass: input.storageClass } : {}),
      extraConfig: JSON.stringify(serverExtraConfig(input.connect)),
      extraVolumes: secrets.caProviderSecret ? [{ type: 'secret', name: secrets.caProviderSecret, load: false }] : [],
    },
    connectInject: {
      enabled: true,
      default: false,
    },
    meshGateway: {
      enabled: true,
      replicas: meshGateway.replicas,
      wanAddress,
      service: {
        type: meshGateway.serviceType,
        port: meshGateway.port,
        ...(meshGateway.nodePort !== undefined ? { nodePort: meshGateway.nodePort } : {}),
        ...(Object.keys(meshGateway.annotations).length > 0
          ? { annotations: annotationsYaml(meshGateway.annotations) }
          : {}),
      },
    },
    ui: {
      enabled: true,
      service: { type: 'ClusterIP' },
    },
  };
}

/**
 * Annotations as the YAML string the chart pastes into the Service: every key and value double-quoted,
 * because Helm parses YAML 1.1, where an unquoted `yes`, `on` or `1` would not be a string and
 * Kubernetes would reject the Service.
 */
export function annotationsYaml(annotations: { readonly [key: string]: string }): string {
  return Object.entries(annotations)
    .map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}\n`)
    .join('');
}

/** The values object consulHelmValues returns. */
export type ConsulHelmValues = ReturnType<typeof consulHelmValues>;

/** One line saying which security settings the values turn on, read from the values themselves. */
export function describeSecurity(values: ConsulHelmValues): string {
  const { tls, acls, gossipEncryption } = values.global;
  const extra = JSON.parse(values.server.extraConfig) as ReturnType<typeof serverSecurityConfig> & {
    acl: { default_policy: string };
    encrypt_verify_incoming: boolean;
    encrypt_verify_outgoing: boolean;
  };
  const parts = [
    tls.enabled && tls.verify ? 'TLS verify' : 'TLS WITHOUT verify',
    tls.httpsOnly ? 'HTTPS only' : 'HTTP allowed',
    tls.enableAutoEncrypt ? 'auto-encrypt' : 'no auto-encrypt',
    acls.manageSystemACLs ? `ACLs default ${extra.acl.default_policy}` : 'ACLs OFF',
    gossipEncryption.secretName
      ? `gossip encryption${extra.encrypt_verify_incoming && extra.encrypt_verify_outgoing ? ' with verify' : ''}`
      : 'gossip encryption OFF',
  ];
  return parts.join(', ');
}

/** Values as the YAML document handed to helm_release. */
export function toValuesYaml(values: object): string {
  return stringify(values, { lineWidth: 0 });
}
