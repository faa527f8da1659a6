import { DataAwsEips } from '@cdktf/provider-aws/lib/data-aws-eips';
import { DataAwsEksCluster } from '@cdktf/provider-aws/lib/data-aws-eks-cluster';
import { HelmProvider } from '@cdktf/provider-helm/lib/provider';
import { KubernetesProvider } from '@cdktf/provider-kubernetes/lib/provider';
import { Construct } from 'constructs';
import { EksCluster, KubeconfigCluster, KubernetesCluster } from '../kubernetes-cluster';
import { awsProvider } from './aws';
import { Fn } from './engine';

/** How a Consul stack reaches its cluster, and what the cluster contributes to the chart values. */
export interface ClusterAccess {
  /** API server URL as the primary's servers reach it (secondaries' k8sAuthMethodHost). */
  readonly apiServerUrl?: string;
  /** Annotations the platform needs on the mesh gateway Service (the user's own win on conflicts). */
  readonly gatewayAnnotations: { readonly [key: string]: string };
}

/** Tag of the Elastic IPs fronting a datacenter's mesh gateway (set by the EKS infra stack). */
export const GATEWAY_EIP_TAG = 'meshform:mesh-gateway';

/**
 * Configures the Kubernetes and Helm providers of a Consul stack for its cluster: by kubeconfig for an
 * existing cluster; for an EKS cluster created by meshform, by looking the cluster up by name (so the stack
 * does not read the infra stack's state) and authenticating with `aws eks get-token`.
 */
export function bindClusterAccess(
  scope: Construct,
  cluster: KubernetesCluster,
  names: {
    readonly mesh: string;
    readonly datacenter: string;
    readonly clusterName: string;
    readonly awsEndpoint?: string;
  },
  options: { readonly helm: boolean } = { helm: true },
): ClusterAccess {
  if (cluster instanceof KubeconfigCluster) {
    const config = { configPath: cluster.path, configContext: cluster.context };
    new KubernetesProvider(scope, 'kubernetes', config);
    if (options.helm) new HelmProvider(scope, 'helm', { kubernetes: config });
    return { apiServerUrl: cluster.apiServerUrl, gatewayAnnotations: {} };
  }
  if (cluster instanceof EksCluster) {
    const region = cluster.options.region;
    awsProvider(scope, region, names.mesh, names.datacenter, names.awsEndpoint);
    const eks = new DataAwsEksCluster(scope, 'Cluster', { name: names.clusterName });
    const connection = {
      host: eks.endpoint,
      clusterCaCertificate: Fn.base64decode(eks.certificateAuthority.get(0).data),
    };
    const exec = {
      apiVersion: 'client.authentication.k8s.io/v1beta1',
      command: 'aws',
      args: ['eks', 'get-token', '--cluster-name', names.clusterName, '--region', region],
    };
    new KubernetesProvider(scope, 'kubernetes', { ...connection, exec: [exec] });
    if (!options.helm) return { apiServerUrl: eks.endpoint, gatewayAnnotations: {} };
    const gatewayIps = new DataAwsEips(scope, 'GatewayAddresses', {
      filter: [{ name: `tag:${GATEWAY_EIP_TAG}`, values: [names.clusterName] }],
    });
    new HelmProvider(scope, 'helm', { kubernetes: { ...connection, exec } });
    return {
      apiServerUrl: eks.endpoint,
      gatewayAnnotations: {
        // In-tree AWS load balancer: an internet-facing NLB on the meshform Elastic IPs, one per zone.
        'service.beta.kubernetes.io/aws-load-balancer-type': 'nlb',
        'service.beta.kubernetes.io/aws-load-balancer-eip-allocations': Fn.join(',', gatewayIps.allocationIds),
      },
    };
  }
  throw new Error(`unsupported cluster kind ${cluster.constructor.name}`);
}
