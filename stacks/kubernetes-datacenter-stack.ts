import { Construct } from 'constructs';
import type { ConsulSecretRefs } from '../constructs/private/helm-values';
import { bindClusterAccess, ClusterAccess, ClusterConnection } from '../constructs/private/kubernetes-access';
import { KubernetesControlPlane } from '../constructs/private/kubernetes-control-plane';
import { SecretVariables } from '../constructs/private/secret-variables';
import { withShortTokenStacks } from '../constructs/private/engine';
import { MeshStack, MeshStackProps } from './mesh-stack';

/** Props of a KubernetesDatacenterStack. */
export interface KubernetesDatacenterStackProps extends MeshStackProps {
  /** Mesh name (labels, secret variable names). */
  readonly mesh: string;
  /** Consul datacenter name. */
  readonly datacenter: string;
  /** Whether the datacenter is the mesh's primary (it holds the ACL management token). */
  readonly primary: boolean;
  /** How the stack reaches the cluster. */
  readonly cluster: ClusterConnection;
  /** Name of the EKS cluster meshform creates (looked up by name); unused for a kubeconfig cluster. */
  readonly clusterName: string;
  /**
   * Where the stack's AWS provider sends its calls (an EKS cluster's lookup).
   * @default - AWS
   */
  readonly awsEndpoint?: string;
  /**
   * Whether the stack creates meshform's StorageClass for the servers' volumes (`meshform-ebs-gp3-encrypted`,
   * EKS clusters meshform creates).
   * @default false
   */
  readonly createServerStorageClass?: boolean;
  /** Kubernetes namespace of Consul. */
  readonly namespace: string;
  /** Helm release name. */
  readonly releaseName: string;
  /** consul-k8s chart version. */
  readonly chartVersion: string;
  /**
   * Files of the service mesh CA provider (public material), put in a secret of their own.
   * @default - none
   */
  readonly caProviderFiles?: readonly { readonly name: string; readonly content: string }[];
  /** Name of the secret of the CA provider's files. */
  readonly caProviderSecretName: string;
  /**
   * Renders the chart values (YAML, no secret) from the secrets' names; read at synthesis, when the whole
   * mesh is known.
   */
  readonly helmValues: (secretRefs: ConsulSecretRefs) => string;
}

/**
 * The Consul stack of one Kubernetes datacenter: Kubernetes and Helm providers for its cluster, the mesh's
 * secrets as sensitive variables, and Consul's control plane. It reads no other stack's state: everything it
 * needs from other datacenters (the primary's name and gateway addresses) is declared in the topology, and a
 * cluster meshform created is looked up by name.
 */
export class KubernetesDatacenterStack extends MeshStack {
  /** Consul's control plane on the cluster. */
  public readonly controlPlane: KubernetesControlPlane;
  /** How the stack reaches the cluster. */
  public readonly access: ClusterAccess;

  constructor(scope: Construct, id: string, props: KubernetesDatacenterStackProps) {
    super(scope, id, props);
    // the tokens cdktf makes for these resources need no creation stack (see withShortTokenStacks)
    const { access, controlPlane } = withShortTokenStacks(() => {
      const access = bindClusterAccess(this, props.cluster, {
        mesh: props.mesh,
        datacenter: props.datacenter,
        clusterName: props.clusterName,
        awsEndpoint: props.awsEndpoint,
        serverStorageClass: props.createServerStorageClass ?? false,
      });
      const secrets = new SecretVariables(this, 'SecretInputs', props.mesh, props.datacenter, props.primary);
      const controlPlane = new KubernetesControlPlane(this, 'ControlPlane', {
        mesh: props.mesh,
        datacenter: props.datacenter,
        primary: props.primary,
        namespace: props.namespace,
        releaseName: props.releaseName,
        chartVersion: props.chartVersion,
        secrets,
        caProviderFiles: props.caProviderFiles ?? [],
        caProviderSecretName: props.caProviderSecretName,
        renderValues: props.helmValues,
        releaseDependsOn: access.serverStorageClass ? [access.serverStorageClass] : [],
      });
      return { access, controlPlane };
    });
    this.access = access;
    this.controlPlane = controlPlane;
  }
}
