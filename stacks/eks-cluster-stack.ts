import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group';
import { Eip } from '@cdktf/provider-aws/lib/eip';
import { EksAddon } from '@cdktf/provider-aws/lib/eks-addon';
import { DataAwsEips } from '@cdktf/provider-aws/lib/data-aws-eips';
import { EksCluster as EksClusterResource, EksClusterVpcConfig } from '@cdktf/provider-aws/lib/eks-cluster';
import { EksNodeGroup } from '@cdktf/provider-aws/lib/eks-node-group';
import { EksPodIdentityAssociation } from '@cdktf/provider-aws/lib/eks-pod-identity-association';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { IamRolePolicyAttachment } from '@cdktf/provider-aws/lib/iam-role-policy-attachment';
import { KmsAlias } from '@cdktf/provider-aws/lib/kms-alias';
import { KmsKey } from '@cdktf/provider-aws/lib/kms-key';
import { LaunchTemplate } from '@cdktf/provider-aws/lib/launch-template';
import { Route53Record } from '@cdktf/provider-aws/lib/route53-record';
import { Construct } from 'constructs';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy';
import {
  awsProvider,
  managedPolicyArn,
  meshTags,
  PolicyStatement,
  policyDocument,
  serviceTrustPolicy,
} from '../constructs/private/aws';
import { AwsNetwork } from '../constructs/private/aws-network';
import type { Cidr } from '../constructs/private/cidr';
import { EGRESS_NAT, EGRESS_TAG, MeshformEgress } from '../constructs/private/egress';
import { escapeTerraformTemplate, Fn, TerraformOutput, terraformLiteral, Token } from '../constructs/private/engine';
import { GATEWAY_EIP_TAG } from '../constructs/private/kubernetes-access';
import { MeshStack, MeshStackProps } from './mesh-stack';

/** Props of an EksClusterStack. */
export interface EksClusterStackProps extends MeshStackProps {
  /** Mesh name (tags). */
  readonly mesh: string;
  /** Consul datacenter name (tags). */
  readonly datacenter: string;
  /** Name of the cluster and prefix of its resources' names (`<mesh>-<datacenter>`). */
  readonly clusterName: string;
  /** AWS region. */
  readonly region: string;
  /**
   * Where the stack's AWS providers send their calls.
   * @default - AWS
   */
  readonly awsEndpoint?: string;
  /** The VPC block (validated by the datacenter). */
  readonly vpcCidr: Cidr;
  /** Availability zones of the subnets and nodes. */
  readonly availabilityZones: readonly string[];
  /** Kubernetes version of the cluster. */
  readonly kubernetesVersion: string;
  /** Instance type of the managed nodes. */
  readonly nodeInstanceType: string;
  /** Number of managed nodes. */
  readonly nodes: number;
  /**
   * CIDRs allowed to reach the cluster's API endpoint publicly.
   * @default - the endpoint is private
   */
  readonly apiPublicAccessCidrs?: readonly string[];
  /**
   * Route 53 hosted zone in which the mesh gateway's address gets an A record on the gateway's Elastic IPs.
   * @default - no record
   */
  readonly hostedZoneId?: string;
  /**
   * The mesh gateway's declared DNS name.
   * @default - none
   */
  readonly gatewayAddress?: string;
  /** Kubernetes namespace of Consul (its servers' service account). */
  readonly consulNamespace: string;
  /**
   * What the Consul servers' service account may do in AWS (AWS Private CA as the mesh CA): a role with
   * these statements, bound to it by EKS Pod Identity.
   * @default - no role
   */
  readonly consulServerPolicyStatements?: readonly PolicyStatement[];
}

/**
 * The AWS "infra" stack of a Kubernetes datacenter whose cluster meshform creates: a VPC, an EKS cluster
 * (secrets encrypted with its own KMS key, control plane logs, API endpoint private unless CIDRs are
 * allowed), a managed node group (IMDSv2 required, encrypted gp3 root volumes), the EBS CSI driver for
 * Consul's server volumes, and one Elastic IP per zone for the mesh gateway's network load balancer.
 * The datacenter's Consul stack depends on it.
 */
export class EksClusterStack extends MeshStack {
  /** The cluster's name. */
  public readonly clusterName: string;
  /** The network. */
  public readonly network: AwsNetwork;
  /** The EKS cluster. */
  private readonly eks: EksClusterResource;
  /** The cluster's network settings as declared (before the primary's egress addresses are added). */
  private readonly vpcConfig: EksClusterVpcConfig;
  private readonly props: EksClusterStackProps;

  constructor(scope: Construct, id: string, props: EksClusterStackProps) {
    super(scope, id, props);
    this.props = props;
    const name = props.clusterName;
    this.clusterName = name;
    awsProvider(this, props.region, props.mesh, props.datacenter, props.awsEndpoint);

    this.network = new AwsNetwork(this, 'Network', {
      name,
      cidr: props.vpcCidr,
      availabilityZones: props.availabilityZones,
      publicSubnetTags: { 'kubernetes.io/role/elb': '1', [`kubernetes.io/cluster/${name}`]: 'shared' },
      privateSubnetTags: { 'kubernetes.io/role/internal-elb': '1', [`kubernetes.io/cluster/${name}`]: 'shared' },
    });

    const secretsKey = new KmsKey(this, 'SecretsKey', {
      description: `Envelope encryption of Kubernetes secrets of ${name} (holds the mesh's Consul secrets)`,
      enableKeyRotation: true,
      deletionWindowInDays: 30,
    });
    new KmsAlias(this, 'SecretsKeyAlias', { name: `alias/meshform/${name}-secrets`, targetKeyId: secretsKey.keyId });

    const clusterRole = new IamRole(this, 'ClusterRole', {
      name: `${name}-eks-cluster`,
      assumeRolePolicy: serviceTrustPolicy('eks.amazonaws.com', ['sts:AssumeRole', 'sts:TagSession']),
    });
    const clusterPolicy = new IamRolePolicyAttachment(this, 'ClusterPolicy', {
      role: clusterRole.name,
      policyArn: managedPolicyArn('AmazonEKSClusterPolicy'),
    });
    const logs = new CloudwatchLogGroup(this, 'ControlPlaneLogs', {
      name: `/aws/eks/${name}/cluster`,
      retentionInDays: 90,
    });

    const publicCidrs = terraformLiteral([...(props.apiPublicAccessCidrs ?? [])]);
    this.vpcConfig = {
      subnetIds: [...this.network.privateSubnetIds],
      endpointPrivateAccess: true,
      endpointPublicAccess: publicCidrs.length > 0,
      ...(publicCidrs.length > 0 ? { publicAccessCidrs: publicCidrs } : {}),
    };
    const eks = new EksClusterResource(this, 'Cluster', {
      name,
      roleArn: clusterRole.arn,
      version: escapeTerraformTemplate(props.kubernetesVersion),
      vpcConfig: this.vpcConfig,
      encryptionConfig: { resources: ['secrets'], provider: { keyArn: secretsKey.arn } },
      enabledClusterLogTypes: ['api', 'audit', 'authenticator', 'controllerManager', 'scheduler'],
      accessConfig: { authenticationMode: 'API', bootstrapClusterCreatorAdminPermissions: true },
      dependsOn: [clusterPolicy, logs],
    });
    this.eks = eks;

    const nodeRole = new IamRole(this, 'NodeRole', {
      name: `${name}-eks-node`,
      assumeRolePolicy: serviceTrustPolicy('ec2.amazonaws.com'),
    });
    const nodePolicies = [
      'AmazonEKSWorkerNodePolicy',
      'AmazonEKS_CNI_Policy',
      'AmazonEC2ContainerRegistryReadOnly',
    ].map(
      (policy) =>
        new IamRolePolicyAttachment(this, `Node${policy}`, {
          role: nodeRole.name,
          policyArn: managedPolicyArn(policy),
        }),
    );
    const template = new LaunchTemplate(this, 'NodeTemplate', {
      name: `${name}-nodes`,
      description: 'meshform EKS nodes: IMDSv2 only, encrypted gp3 root volume',
      // Hop limit 2: pods are one network hop further than the node; IMDSv2 tokens are still required.
      metadataOptions: { httpEndpoint: 'enabled', httpTokens: 'required', httpPutResponseHopLimit: 2 },
      blockDeviceMappings: [
        {
          deviceName: '/dev/xvda',
          ebs: { volumeSize: 50, volumeType: 'gp3', encrypted: 'true', deleteOnTermination: 'true' },
        },
      ],
      tagSpecifications: [{ resourceType: 'instance', tags: { Name: `${name}-node` } }],
    });
    const nodes = new EksNodeGroup(this, 'Nodes', {
      clusterName: eks.name,
      nodeGroupName: `${name}-nodes`,
      nodeRoleArn: nodeRole.arn,
      subnetIds: [...this.network.privateSubnetIds],
      instanceTypes: [escapeTerraformTemplate(props.nodeInstanceType)],
      scalingConfig: { desiredSize: props.nodes, minSize: props.nodes, maxSize: props.nodes + 1 },
      updateConfig: { maxUnavailable: 1 },
      launchTemplate: { id: template.id, version: template.latestVersion.toString() },
      dependsOn: nodePolicies,
    });

    for (const addon of ['vpc-cni', 'kube-proxy', 'coredns', 'eks-pod-identity-agent']) {
      new EksAddon(this, `Addon-${addon}`, { clusterName: eks.name, addonName: addon, dependsOn: [nodes] });
    }
    const ebsCsiRole = new IamRole(this, 'EbsCsiRole', {
      name: `${name}-ebs-csi`,
      assumeRolePolicy: serviceTrustPolicy('pods.eks.amazonaws.com', ['sts:AssumeRole', 'sts:TagSession']),
    });
    new IamRolePolicyAttachment(this, 'EbsCsiPolicy', {
      role: ebsCsiRole.name,
      policyArn: managedPolicyArn('service-role/AmazonEBSCSIDriverPolicy'),
    });
    const ebsCsiIdentity = new EksPodIdentityAssociation(this, 'EbsCsiIdentity', {
      clusterName: eks.name,
      namespace: 'kube-system',
      serviceAccount: 'ebs-csi-controller-sa',
      roleArn: ebsCsiRole.arn,
    });
    new EksAddon(this, 'Addon-aws-ebs-csi-driver', {
      clusterName: eks.name,
      addonName: 'aws-ebs-csi-driver',
      dependsOn: [nodes, ebsCsiIdentity],
    });

    // With AWS Private CA as the mesh CA, the Consul servers' service account gets a role allowed to use it.
    const pcaPermissions = props.consulServerPolicyStatements ?? [];
    if (pcaPermissions.length > 0) {
      const serverRole = new IamRole(this, 'ConsulServerRole', {
        name: `${name}-consul-server`,
        assumeRolePolicy: serviceTrustPolicy('pods.eks.amazonaws.com', ['sts:AssumeRole', 'sts:TagSession']),
      });
      new IamRolePolicy(this, 'ConsulServerPolicy', {
        name: 'meshform-consul-server',
        role: serverRole.id,
        policy: policyDocument(pcaPermissions),
      });
      new EksPodIdentityAssociation(this, 'ConsulServerIdentity', {
        clusterName: eks.name,
        namespace: props.consulNamespace,
        serviceAccount: 'consul-server',
        roleArn: serverRole.arn,
      });
    }

    const gatewayIps = props.availabilityZones.map(
      (zone, i) =>
        new Eip(this, `GatewayAddress${i}`, {
          domain: 'vpc',
          tags: { Name: `${name}-mesh-gateway-${zone}`, [GATEWAY_EIP_TAG]: name },
        }),
    );
    const address = props.gatewayAddress;
    if (props.hostedZoneId && address) {
      new Route53Record(this, 'GatewayRecord', {
        zoneId: escapeTerraformTemplate(props.hostedZoneId),
        name: escapeTerraformTemplate(address),
        type: 'A',
        ttl: 60,
        records: gatewayIps.map((ip) => ip.publicIp),
      });
    }

    new TerraformOutput(this, 'cluster_name', { value: eks.name });
    new TerraformOutput(this, 'cluster_endpoint', { value: eks.endpoint });
    new TerraformOutput(this, 'mesh_gateway_public_ips', {
      value: gatewayIps.map((ip) => ip.publicIp),
      description: address ? `Point ${address} at these addresses` : 'Addresses of the mesh gateway load balancer',
    });
  }

  /**
   * Admits the primary's Consul servers to this secondary's API endpoint: their NAT addresses, looked up by tag in
   * the primary's region (its network's stack deploys first), join the declared `apiPublicAccessCidrs`.
   */
  public admitPrimaryEgress(egress: MeshformEgress): void {
    const props = this.props;
    const provider =
      egress.region === props.region
        ? undefined
        : awsProvider(this, egress.region, props.mesh, props.datacenter, props.awsEndpoint, `egress-${egress.region}`);
    const primaryEgress = new DataAwsEips(this, 'PrimaryEgress', {
      ...(provider ? { provider } : {}),
      filter: [
        { name: `tag:${EGRESS_TAG}`, values: [EGRESS_NAT] },
        // the provider default tags of the primary's network stack
        ...Object.entries(meshTags(props.mesh, egress.datacenter)).map(([key, value]) => ({
          name: `tag:${key}`,
          values: [value],
        })),
      ],
    });
    this.eks.putVpcConfig({
      ...this.vpcConfig,
      publicAccessCidrs: Token.asList(
        Fn.distinct(
          Fn.concat([this.vpcConfig.publicAccessCidrs ?? [], Fn.formatlist('%s/32', [primaryEgress.publicIps])]),
        ),
      ),
    });
    this.addDependency(egress.stack);
  }
}
