import { DataAwsEips } from '@cdktf/provider-aws/lib/data-aws-eips';
import { DataAwsEksCluster } from '@cdktf/provider-aws/lib/data-aws-eks-cluster';
import { HelmProvider } from '@cdktf/provider-helm/lib/provider';
import { KubernetesProvider } from '@cdktf/provider-kubernetes/lib/provider';
import { StorageClassV1 } from '@cdktf/provider-kubernetes/lib/storage-class-v1';
import { Construct } from 'constructs';
import { awsProvider } from './aws';
import { escapeTerraformTemplate, Fn, terraformLiteral } from './engine';

/** How a stack reaches its cluster: by kubeconfig, or an EKS cluster meshform creates, looked up by name. */
export type ClusterConnection =
  | {
      readonly kind: 'kubeconfig';
      /** kubeconfig path. */
      readonly path: string;
      /** kubeconfig context. */
      readonly context: string;
      /** API server URL as the primary's servers reach it, when declared. */
      readonly apiServerUrl?: string;
    }
  | {
      readonly kind: 'eks';
      /** AWS region of the cluster. */
      readonly region: string;
    };

/** How a Consul stack reaches its cluster, and what the cluster contributes to the chart values. */
export interface ClusterAccess {
  /** API server URL as the primary's servers reach it (secondaries' k8sAuthMethodHost). */
  readonly apiServerUrl?: string;
  /** Annotations the platform needs on the mesh gateway Service (the user's own win on conflicts). */
  readonly gatewayAnnotations: { readonly [key: string]: string };
  /** The StorageClass meshform creates for the servers' volumes (EKS clusters meshform creates), if any. */
  readonly serverStorageClass?: StorageClassV1;
}

/**
 * The StorageClass of the Consul servers' volumes on an EKS cluster meshform creates. EKS clusters of 1.30 and
 * later have no default StorageClass, and the EBS CSI add-on's own optional default class
 * (kubernetes-sigs/aws-ebs-csi-driver charts/aws-ebs-csi-driver/templates/ebs-csi-default-sc.yaml) sets no
 * parameters, so its volumes are encrypted only if the account encrypts EBS by default (the driver's `encrypted`
 * parameter defaults to false: docs/parameters.md). meshform's class says it: gp3, encrypted.
 */
export const EKS_SERVER_STORAGE_CLASS = 'meshform-ebs-gp3-encrypted';

/** Tag of the Elastic IPs fronting a datacenter's mesh gateway (set by the EKS infra stack). */
export const GATEWAY_EIP_TAG = 'meshform:mesh-gateway';

/**
 * Configures the Kubernetes and Helm providers of a Consul stack for its cluster: by kubeconfig for an
 * existing cluster; for an EKS cluster created by meshform, by looking the cluster up by name (so the stack
 * does not read the infra stack's state) and authenticating with `aws eks get-token`.
 */
export function bindClusterAccess(
  scope: Construct,
  cluster: ClusterConnection,
  names: {
    readonly mesh: string;
    readonly datacenter: string;
    readonly clusterName: string;
    readonly awsEndpoint?: string;
    /** Whether to create meshform's server StorageClass (EKS clusters meshform creates). */
    readonly serverStorageClass?: boolean;
  },
  options: { readonly helm: boolean } = { helm: true },
): ClusterAccess {
  if (cluster.kind === 'kubeconfig') {
    // the kubeconfig path and context are user text: literal, never a template
    const config = terraformLiteral({ configPath: cluster.path, configContext: cluster.context });
    new KubernetesProvider(scope, 'kubernetes', config);
    if (options.helm) new HelmProvider(scope, 'helm', { kubernetes: config });
    return { apiServerUrl: cluster.apiServerUrl, gatewayAnnotations: {} };
  }
  const region = cluster.region;
  awsProvider(scope, region, names.mesh, names.datacenter, names.awsEndpoint);
  const eks = new DataAwsEksCluster(scope, 'Cluster', { name: escapeTerraformTemplate(names.clusterName) });
  const connection = {
    host: eks.endpoint,
    clusterCaCertificate: Fn.base64decode(eks.certificateAuthority.get(0).data),
  };
  const exec = {
    apiVersion: 'client.authentication.k8s.io/v1beta1',
    command: 'aws',
    args: terraformLiteral(['eks', 'get-token', '--cluster-name', names.clusterName, '--region', region]),
  };
  new KubernetesProvider(scope, 'kubernetes', { ...connection, exec: [exec] });
  if (!options.helm) return { apiServerUrl: eks.endpoint, gatewayAnnotations: {} };
  const gatewayIps = new DataAwsEips(scope, 'GatewayAddresses', {
    filter: [{ name: `tag:${GATEWAY_EIP_TAG}`, values: [escapeTerraformTemplate(names.clusterName)] }],
  });
  new HelmProvider(scope, 'helm', { kubernetes: { ...connection, exec } });
  const annotations = {
    // In-tree AWS load balancer: an internet-facing NLB on the meshform Elastic IPs, one per zone.
    'service.beta.kubernetes.io/aws-load-balancer-type': 'nlb',
    'service.beta.kubernetes.io/aws-load-balancer-eip-allocations': Fn.join(',', gatewayIps.allocationIds),
  };
  if (!names.serverStorageClass) return { apiServerUrl: eks.endpoint, gatewayAnnotations: annotations };
  const serverStorageClass = new StorageClassV1(scope, 'ServerStorageClass', {
    metadata: {
      name: EKS_SERVER_STORAGE_CLASS,
      labels: terraformLiteral({ 'app.kubernetes.io/managed-by': 'meshform', 'meshform.io/mesh': names.mesh }),
    },
    storageProvisioner: 'ebs.csi.aws.com',
    parameters: { type: 'gp3', encrypted: 'true', 'csi.storage.k8s.io/fstype': 'ext4' },
    // Volumes are created in the zone of the node the server is scheduled on.
    volumeBindingMode: 'WaitForFirstConsumer',
    allowVolumeExpansion: true,
    reclaimPolicy: 'Delete',
  });
  return { apiServerUrl: eks.endpoint, serverStorageClass, gatewayAnnotations: annotations };
}
