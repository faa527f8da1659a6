import { NamespaceV1 } from '@cdktf/provider-kubernetes/lib/namespace-v1';
import { SecretV1 } from '@cdktf/provider-kubernetes/lib/secret-v1';
import { Release } from '@cdktf/provider-helm/lib/release';
import { Construct } from 'constructs';
import { escapeTerraformTemplate, ITerraformDependable, Lazy, terraformLiteral } from './engine';
import { ConsulSecretRefs } from './helm-values';
import { SecretVariables } from './secret-variables';
import { CHART_REPOSITORY } from './versions';

/** What the control plane of one Kubernetes datacenter needs. */
export interface KubernetesControlPlaneProps {
  readonly mesh: string;
  readonly datacenter: string;
  readonly primary: boolean;
  readonly namespace: string;
  readonly releaseName: string;
  readonly chartVersion: string;
  readonly secrets: SecretVariables;
  /** Files of the service mesh CA provider (public), put in their own secret when there are any. */
  readonly caProviderFiles: readonly { readonly name: string; readonly content: string }[];
  /** Name of that secret. */
  readonly caProviderSecretName: string;
  /** Renders the chart values (YAML); called at synth, after the whole mesh is known. */
  readonly renderValues: (refs: ConsulSecretRefs) => string;
  /**
   * What else the release needs first (e.g. the servers' StorageClass).
   * @default - only the secrets
   */
  readonly releaseDependsOn?: readonly ITerraformDependable[];
}

/**
 * Consul's control plane on one cluster: the namespace, the Kubernetes secrets the chart reads (server CA
 * certificate and key, gossip key, ACL token, each its own secret so a pod that mounts one does not see
 * the others) and the consul-k8s Helm release.
 */
export class KubernetesControlPlane extends Construct {
  /** The Helm release. */
  public readonly release: Release;
  /** The secret references the values use. */
  public readonly secretRefs: ConsulSecretRefs;

  constructor(scope: Construct, id: string, props: KubernetesControlPlaneProps) {
    super(scope, id);
    const labels = terraformLiteral({
      'app.kubernetes.io/managed-by': 'meshform',
      'meshform.io/mesh': props.mesh,
      'meshform.io/datacenter': props.datacenter,
    });
    const namespace = new NamespaceV1(this, 'Namespace', {
      metadata: { name: escapeTerraformTemplate(props.namespace), labels },
    });

    // Secret values travel in data_wo (write-only: never in plan or state), sent again when the secret store's
    // version of the datacenter's secrets changes.
    const secret = (id: string, name: string, data: { [key: string]: string }, type = 'Opaque') =>
      new SecretV1(this, id, {
        metadata: { name: escapeTerraformTemplate(name), namespace: namespace.metadata.name, labels },
        type,
        dataWo: data,
        dataWoRevision: props.secrets.revision,
      });

    const prefix = `${props.releaseName}-meshform`;
    this.secretRefs = {
      caBundle: { secretName: `${prefix}-ca-bundle`, secretKey: 'tls.crt' },
      serverCertSecret: `${prefix}-server-cert`,
      gossipKey: { secretName: `${prefix}-gossip-key`, secretKey: 'key' },
      aclToken: { secretName: `${prefix}-acl-token`, secretKey: 'token' },
      ...(props.primary
        ? { aclReplicationToken: { secretName: `${prefix}-acl-replication-token`, secretKey: 'token' } }
        : {}),
      ...(props.caProviderFiles.length > 0 ? { caProviderSecret: props.caProviderSecretName } : {}),
    };
    const refs = this.secretRefs;
    const secrets = [
      secret('CaBundle', refs.caBundle.secretName, { [refs.caBundle.secretKey]: props.secrets.value('caBundle') }),
      secret(
        'ServerCert',
        refs.serverCertSecret,
        { 'tls.crt': props.secrets.value('serverChain'), 'tls.key': props.secrets.value('serverKey') },
        'kubernetes.io/tls',
      ),
      secret('GossipKey', refs.gossipKey.secretName, { [refs.gossipKey.secretKey]: props.secrets.value('gossipKey') }),
      // the primary's bootstrap (management) token; a secondary's replication token
      secret('AclToken', refs.aclToken.secretName, {
        [refs.aclToken.secretKey]: props.secrets.value(props.primary ? 'aclBootstrapToken' : 'aclReplicationToken'),
      }),
    ];
    if (refs.aclReplicationToken) {
      // The primary creates the replication token with this SecretID (the chart's createReplicationToken with
      // replicationToken), so every secondary's copy from the secret store is valid without reading it back.
      secrets.push(
        secret('AclReplicationToken', refs.aclReplicationToken.secretName, {
          [refs.aclReplicationToken.secretKey]: props.secrets.value('aclReplicationToken'),
        }),
      );
    }

    if (refs.caProviderSecret) {
      // public material (the CA provider's configuration and trust): plain data, shown in plans
      secrets.push(
        new SecretV1(this, 'CaProviderFiles', {
          metadata: {
            name: escapeTerraformTemplate(refs.caProviderSecret),
            namespace: namespace.metadata.name,
            labels,
          },
          type: 'Opaque',
          data: terraformLiteral(Object.fromEntries(props.caProviderFiles.map((f) => [f.name, f.content]))),
        }),
      );
    }

    this.release = new Release(this, 'Consul', {
      name: escapeTerraformTemplate(props.releaseName),
      namespace: namespace.metadata.name,
      repository: CHART_REPOSITORY,
      chart: 'consul',
      version: escapeTerraformTemplate(props.chartVersion),
      // the values are user text (annotations, addresses, paths) in YAML: literal, never a template
      values: Lazy.listValue({ produce: () => [escapeTerraformTemplate(props.renderValues(refs))] }),
      wait: true,
      waitForJobs: true,
      timeout: 1200,
      atomic: false,
      cleanupOnFail: false,
      maxHistory: 10,
      dependsOn: [...secrets, ...(props.releaseDependsOn ?? [])],
    });
  }
}
