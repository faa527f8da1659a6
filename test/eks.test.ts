import { describe, expect, it } from 'vitest';
import type { App } from '../constructs/private/engine';
import { EksClusterOptions, KubernetesCluster, KubernetesDatacenter, Mesh } from '../index';
import { helmValues, onlyResource, resources, synth, thrownMessage } from './support';

/** GIVEN helper: an EKS primary (created by meshform) and an EKS secondary. */
function eksMesh(primary: Partial<EksClusterOptions> = {}) {
  return (app: App) => {
    const mesh = new Mesh(app, 'shop');
    new KubernetesDatacenter(mesh, 'east', {
      primary: true,
      cluster: KubernetesCluster.eks({ region: 'us-east-1', vpcCidr: '10.10.0.0/16', ...primary }),
      meshGateway: { address: 'mgw.east.example.com' },
    });
    new KubernetesDatacenter(mesh, 'west', {
      cluster: KubernetesCluster.eks({
        region: 'us-west-2',
        vpcCidr: '10.11.0.0/16',
        apiPublicAccessCidrs: ['198.51.100.0/24'],
      }),
    });
  };
}

describe('EKS clusters created by meshform', () => {
  it('puts the cluster in an infra stack the Consul stack deploys after', () => {
    const out = synth(eksMesh());
    expect(out.stackNames().sort()).toEqual([
      'shop-east',
      'shop-east-config',
      'shop-east-infra',
      'shop-west',
      'shop-west-infra',
    ]);
    expect(out.manifest.stacks['shop-east']!.dependencies).toEqual(['shop-east-infra']);
    expect(out.manifest.stacks['shop-east-config']!.dependencies).toEqual(['shop-east']);
    expect(out.manifest.stacks['shop-west']!.dependencies.sort()).toEqual(['shop-east', 'shop-west-infra']);
    expect(out.manifest.stacks['shop-west-infra']!.dependencies).toEqual([]);
    expect(out.mesh('shop').deployOrder).toEqual([
      'shop-east-infra',
      'shop-east',
      'shop-east-config',
      'shop-west-infra',
      'shop-west',
    ]);
  });

  it('encrypts Kubernetes secrets with its own KMS key, logs the control plane and keeps the API private by default', () => {
    const infra = synth(eksMesh()).stack('shop-east-infra');
    expect(onlyResource(infra, 'aws_eks_cluster')).toMatchObject({
      name: 'shop-east',
      version: '1.33',
      vpc_config: { endpoint_private_access: true, endpoint_public_access: false },
      encryption_config: { resources: ['secrets'], provider: { key_arn: '${aws_kms_key.SecretsKey.arn}' } },
      enabled_cluster_log_types: ['api', 'audit', 'authenticator', 'controllerManager', 'scheduler'],
      access_config: { authentication_mode: 'API', bootstrap_cluster_creator_admin_permissions: true },
    });
    expect(onlyResource(infra, 'aws_kms_key')).toMatchObject({ enable_key_rotation: true });
    const west = synth(eksMesh()).stack('shop-west-infra');
    expect(onlyResource(west, 'aws_eks_cluster')).toMatchObject({
      vpc_config: { endpoint_public_access: true, public_access_cidrs: ['198.51.100.0/24'] },
    });
  });

  it('runs nodes with IMDSv2 required and encrypted root volumes', () => {
    const infra = synth(eksMesh()).stack('shop-east-infra');
    expect(onlyResource(infra, 'aws_launch_template')).toMatchObject({
      metadata_options: { http_endpoint: 'enabled', http_tokens: 'required', http_put_response_hop_limit: 2 },
      block_device_mappings: [{ device_name: '/dev/xvda', ebs: { encrypted: 'true', volume_type: 'gp3' } }],
    });
    expect(onlyResource(infra, 'aws_eks_node_group')).toMatchObject({
      scaling_config: { desired_size: 3, min_size: 3, max_size: 4 },
      instance_types: ['m6i.large'],
      update_config: { max_unavailable: 1 },
    });
  });

  it('installs the EBS CSI driver with a pod identity, for the Consul servers volumes', () => {
    const infra = synth(eksMesh()).stack('shop-east-infra');
    expect(
      resources(infra, 'aws_eks_addon')
        .map((a) => a.addon_name)
        .sort(),
    ).toEqual(['aws-ebs-csi-driver', 'coredns', 'eks-pod-identity-agent', 'kube-proxy', 'vpc-cni']);
    expect(onlyResource(infra, 'aws_eks_pod_identity_association')).toMatchObject({
      namespace: 'kube-system',
      service_account: 'ebs-csi-controller-sa',
    });
  });

  it('allocates an Elastic IP per zone for the mesh gateway and publishes the declared address when given a zone', () => {
    const infra = synth(eksMesh({ hostedZoneId: 'Z1EXAMPLE' })).stack('shop-east-infra');
    const gatewayIps = resources(infra, 'aws_eip').filter(
      (e) => (e.tags as { [k: string]: string })['meshform:mesh-gateway'],
    );
    expect(gatewayIps).toHaveLength(3);
    expect(onlyResource(infra, 'aws_route53_record')).toMatchObject({
      zone_id: 'Z1EXAMPLE',
      name: 'mgw.east.example.com',
      type: 'A',
      ttl: 60,
    });
  });

  it('reaches the cluster from the Consul stack by name, with aws eks get-token, reading no state', () => {
    const consul = synth(eksMesh()).stack('shop-west');
    expect(consul.data!.aws_eks_cluster!.Cluster).toEqual(expect.objectContaining({ name: 'shop-west' }));
    expect(consul.provider!.kubernetes).toEqual([
      {
        host: '${data.aws_eks_cluster.Cluster.endpoint}',
        cluster_ca_certificate: '${base64decode(data.aws_eks_cluster.Cluster.certificate_authority[0].data)}',
        exec: [
          {
            api_version: 'client.authentication.k8s.io/v1beta1',
            command: 'aws',
            args: ['eks', 'get-token', '--cluster-name', 'shop-west', '--region', 'us-west-2'],
          },
        ],
      },
    ]);
    expect(JSON.stringify(consul)).not.toContain('terraform_remote_state');
    const values = helmValues(consul);
    expect(values.global.federation.k8sAuthMethodHost).toBe('${data.aws_eks_cluster.Cluster.endpoint}');
    expect(values.meshGateway.service.annotations).toBe(
      '"service.beta.kubernetes.io/aws-load-balancer-eip-allocations": "${join(",", data.aws_eips.GatewayAddresses.allocation_ids)}"\n' +
        '"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"\n',
    );
  });

  it('validates the cluster options', () => {
    const error = (options: Partial<EksClusterOptions>, servers = 3) =>
      thrownMessage(() =>
        synth((app) => {
          const mesh = new Mesh(app, 'shop');
          new KubernetesDatacenter(mesh, 'east', {
            primary: true,
            servers,
            cluster: KubernetesCluster.eks({ region: 'us-east-1', vpcCidr: '10.10.0.0/16', ...options }),
          });
        }),
      );
    expect(error({ vpcCidr: '10.10.0.0/22' })).toBe(
      '[shop/east] VPC CIDR has a prefix outside /16-/20: "10.10.0.0/22". Fix: use a block from /16 to /20, so that every zone gets a public and a private subnet',
    );
    expect(error({ nodes: 3 }, 5)).toBe(
      '[shop/east] the cluster has fewer worker nodes than Consul servers (5), which run on distinct nodes: 3. Fix: give the cluster at least 5 nodes',
    );
    expect(error({ region: 'useast' })).toBe(
      '[shop/east] AWS region is not valid: "useast". Fix: give an AWS region such as "us-east-1"',
    );
  });
});
