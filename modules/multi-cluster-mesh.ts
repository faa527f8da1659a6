import { Construct } from 'constructs';
import { Cloud } from '../constructs/datacenter';
import { errors } from '../constructs/errors';
import { KubernetesCluster } from '../constructs/kubernetes-cluster';
import { KubernetesDatacenter } from '../constructs/kubernetes-datacenter';
import { Mesh, MeshProps } from '../constructs/mesh';
import { StateBackend } from '../constructs/state-backend';

/** One existing cluster of a MultiClusterMesh. */
export interface ClusterSpec {
  /** Datacenter name (RFC 1123 label). */
  readonly name: string;
  /** Cloud the cluster runs in; chooses the load balancer annotations of its mesh gateway. */
  readonly cloud: Cloud;
  /** kubeconfig context of the cluster. */
  readonly kubeconfigContext: string;
  /**
   * kubeconfig file.
   * @default "~/.kube/config"
   */
  readonly kubeconfigPath?: string;
  /**
   * API server URL as the primary's servers reach it.
   * @default - none; required for every cluster but the primary
   */
  readonly kubernetesApiUrl?: string;
  /**
   * You confirm that the API server admits the primary's Consul servers (see `apiServerAdmitsPrimary` of
   * `KubernetesCluster.fromKubeconfig`); until then `meshform check` reports the primary's logins as unproven.
   * @default false
   */
  readonly apiServerAdmitsPrimary?: boolean;
  /**
   * Stable DNS name of the cluster's mesh gateway; external-dns publishes it from the gateway Service.
   * @default - none; required for the primary of a mesh with more than one cluster
   */
  readonly gatewayHostname?: string;
  /**
   * State backend of this cluster's stack.
   * @default - the mesh's backend
   */
  readonly backend?: StateBackend;
}

/** Props of a MultiClusterMesh. */
export interface MultiClusterMeshProps extends MeshProps {
  /** The clusters, each one datacenter. */
  readonly clusters: readonly ClusterSpec[];
  /** Name of the cluster that is primary. */
  readonly primary: string;
  /**
   * Consul servers per cluster.
   * @default 3
   */
  readonly serversPerCluster?: number;
}

/** Annotations that give a gateway Service an internet-facing L4 load balancer on each cloud. */
function loadBalancerAnnotations(cloud: Cloud): { [key: string]: string } {
  switch (cloud) {
    case Cloud.AWS:
      return {
        // The in-tree AWS cloud provider's network load balancer (no load balancer controller needed).
        'service.beta.kubernetes.io/aws-load-balancer-type': 'nlb',
      };
    case Cloud.GOOGLE_CLOUD:
      return { 'cloud.google.com/l4-rbs': 'enabled' };
    case Cloud.AZURE:
      return { 'service.beta.kubernetes.io/azure-load-balancer-internal': 'false' };
    default:
      return {};
  }
}

/**
 * L3 pattern: a mesh over existing Kubernetes clusters in any clouds, one datacenter per cluster, every
 * mesh gateway behind its cloud's L4 load balancer and published under a stable DNS name by external-dns
 * (install external-dns in each cluster). Built only from the public constructs.
 */
export class MultiClusterMesh extends Construct {
  /** The mesh. */
  public readonly mesh: Mesh;
  /** The datacenters, in the order of `clusters`. */
  public readonly datacenters: readonly KubernetesDatacenter[];

  constructor(scope: Construct, id: string, props: MultiClusterMeshProps) {
    super(scope, id);
    const { clusters, primary, serversPerCluster, ...meshProps } = props;
    if (!clusters.some((c) => c.name === primary)) {
      throw errors.unknownPrimary(
        this.node.path,
        primary,
        clusters.map((c) => c.name),
      );
    }
    this.mesh = new Mesh(this, 'Mesh', { name: id, ...meshProps });
    this.datacenters = clusters.map(
      (cluster) =>
        new KubernetesDatacenter(this.mesh, cluster.name, {
          primary: cluster.name === primary,
          cloud: cluster.cloud,
          cluster: KubernetesCluster.fromKubeconfig({
            context: cluster.kubeconfigContext,
            path: cluster.kubeconfigPath,
            apiServerUrl: cluster.kubernetesApiUrl,
            apiServerAdmitsPrimary: cluster.apiServerAdmitsPrimary,
          }),
          servers: serversPerCluster,
          backend: cluster.backend,
          meshGateway: {
            address: cluster.gatewayHostname,
            serviceAnnotations: {
              ...loadBalancerAnnotations(cluster.cloud),
              ...(cluster.gatewayHostname
                ? { 'external-dns.alpha.kubernetes.io/hostname': cluster.gatewayHostname }
                : {}),
            },
          },
        }),
    );
  }
}
