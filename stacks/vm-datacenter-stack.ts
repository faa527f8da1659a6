import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataAwsAmi } from '@cdktf/provider-aws/lib/data-aws-ami';
import { DataAwsRouteTables } from '@cdktf/provider-aws/lib/data-aws-route-tables';
import { DataAwsVpc } from '@cdktf/provider-aws/lib/data-aws-vpc';
import { Eip } from '@cdktf/provider-aws/lib/eip';
import { EipAssociation } from '@cdktf/provider-aws/lib/eip-association';
import { IamInstanceProfile } from '@cdktf/provider-aws/lib/iam-instance-profile';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy';
import { Instance } from '@cdktf/provider-aws/lib/instance';
import { Lb } from '@cdktf/provider-aws/lib/lb';
import { LbListener } from '@cdktf/provider-aws/lib/lb-listener';
import { LbTargetGroup } from '@cdktf/provider-aws/lib/lb-target-group';
import { LbTargetGroupAttachment } from '@cdktf/provider-aws/lib/lb-target-group-attachment';
import { Route } from '@cdktf/provider-aws/lib/route';
import { Route53Record } from '@cdktf/provider-aws/lib/route53-record';
import { SecretsmanagerSecret } from '@cdktf/provider-aws/lib/secretsmanager-secret';
import { SecretsmanagerSecretVersion } from '@cdktf/provider-aws/lib/secretsmanager-secret-version';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { VpcPeeringConnection } from '@cdktf/provider-aws/lib/vpc-peering-connection';
import { VpcSecurityGroupEgressRule } from '@cdktf/provider-aws/lib/vpc-security-group-egress-rule';
import { VpcSecurityGroupIngressRule } from '@cdktf/provider-aws/lib/vpc-security-group-ingress-rule';
import { Construct } from 'constructs';
import { aclPlan, AclPlan, roleSecrets } from '../constructs/private/acl';
import { deriveTokenExpression } from '../constructs/private/acl-expression';
import { awsProvider, PolicyStatement, policyDocument, serviceTrustPolicy } from '../constructs/private/aws';
import { AwsNetwork, NetworkRef } from '../constructs/private/aws-network';
import type { Cidr } from '../constructs/private/cidr';
import {
  escapeTerraformTemplate,
  Fn,
  type ISynthesisSession,
  Lazy,
  resolveTokens,
  TerraformLocal,
  terraformLiteral,
  TerraformOutput,
} from '../constructs/private/engine';
import { ResourceSet } from '../constructs/private/resource-set';
import { SecretVariables } from '../constructs/private/secret-variables';
import {
  cloudInit,
  GATEWAY_LISTEN_PORT,
  HostGroup,
  MetricsBinding,
  NodeRole,
  NodeSpec,
  SecretsSource,
  sidecarMetricsPorts,
  units,
} from '../constructs/private/vm-node';
import { MESH_FLOWS, REMOTE_GATEWAY_DIALERS, VmRole } from '../constructs/private/vm-ports';
import { MeshStack, MeshStackProps } from './mesh-stack';

/** The network of a VM datacenter's stack: a VPC the stack creates, or an existing one. */
export type VmStackNetwork =
  | {
      readonly kind: 'new';
      /** The VPC block. */
      readonly cidr: Cidr;
      /** Its zones (one public and one private subnet, and a NAT gateway, each). */
      readonly availabilityZones: readonly string[];
    }
  | {
      readonly kind: 'existing';
      readonly vpcId: string;
      readonly vpcCidr: string;
      readonly privateSubnetIds: readonly string[];
      readonly publicSubnetIds: readonly string[];
      readonly privateRouteTableIds: readonly string[];
    };

/** How a VM datacenter's mesh gateway is reached. */
export type VmStackGatewayExposure =
  | {
      readonly kind: 'load-balancer';
      /** Internet-facing, or internal to the VPC (and peered ones). */
      readonly internetFacing: boolean;
      /** Sources the gateway port admits besides the VPC and peers. */
      readonly allowedCidrs: readonly string[];
      /** Route 53 zone in which the declared address gets an alias record. */
      readonly hostedZoneId?: string;
    }
  | {
      readonly kind: 'elastic-ip';
      /** Sources the gateway port admits besides the VPC and peers. */
      readonly allowedCidrs: readonly string[];
    };

/** The mesh gateway of a VM datacenter's stack. */
export interface VmStackGateway {
  readonly exposure: VmStackGatewayExposure;
  /**
   * Declared address (DNS name or IP).
   * @default - none: other datacenters dial the load balancer's name or the Elastic IP
   */
  readonly address?: string;
  /** Port the load balancer listens on (the gateway port other datacenters dial). */
  readonly port: number;
  /**
   * `address:port` other datacenters dial, when an address is declared.
   * @default - none
   */
  readonly wanEndpoint?: string;
  /** Number of gateway instances. */
  readonly replicas: number;
}

/** The EC2 instances of a VM datacenter's stack. */
export interface VmStackInstances {
  readonly serverInstanceType: string;
  readonly clientInstanceType: string;
  readonly gatewayInstanceType: string;
  /** Instances of each service's host group. */
  readonly instancesPerService: number;
  readonly rootVolumeGiB: number;
  /** A fixed AMI, or the newest AMI of an owner matching a name pattern (looked up at plan time). */
  readonly machineImage: { readonly amiId: string } | { readonly owner: string; readonly namePattern: string };
}

/** A host group as the owner of the stack renders its node spec. */
export interface VmHostGroupRef {
  /** `server`, `mesh-gateway` or `service-<name>`. */
  readonly name: string;
  readonly role: NodeRole;
  /** Services its hosts run (a service group runs one). */
  readonly services: readonly string[];
}

/** Another datacenter's mesh gateway as this datacenter's hosts dial it. */
export interface RemoteGateway {
  readonly datacenter: string;
  readonly primary: boolean;
  readonly port: number;
  readonly cidr: { readonly cidrIpv4?: string; readonly cidrIpv6?: string };
  /** Where it is, for the rule's description. */
  readonly where: string;
}

/** Another AWS VM datacenter of the region whose VPC this one's is peered with. */
export interface VmPeer {
  readonly mesh: string;
  readonly datacenter: string;
  /** The peer's VPC block. */
  readonly cidr: string;
  /**
   * The peer's existing VPC and the private route tables it declares.
   * @default - a VPC meshform made, looked up by the mesh's tags
   */
  readonly existingVpc?: { readonly vpcId: string; readonly privateRouteTableIds: readonly string[] };
  /** Zones of the VPC meshform made (one private route table each). */
  readonly availabilityZones: number;
}

/** Props of a VmDatacenterStack. */
export interface VmDatacenterStackProps extends MeshStackProps {
  /** Mesh name (tags, names, secret variables). */
  readonly mesh: string;
  /** Consul datacenter name. */
  readonly datacenter: string;
  /** Whether the datacenter is the mesh's primary. */
  readonly primary: boolean;
  /** AWS region. */
  readonly region: string;
  /**
   * Where the stack's AWS provider sends its calls.
   * @default - AWS
   */
  readonly awsEndpoint?: string;
  /** The network. */
  readonly network: VmStackNetwork;
  /** The mesh gateway. */
  readonly gateway: VmStackGateway;
  /** The instances. */
  readonly instances: VmStackInstances;
  /** Number of Consul servers. */
  readonly servers: number;
  /** Value of the servers' cloud auto-join tag (`meshform-join`). */
  readonly joinTag: string;
  /** Where sidecars and gateways serve Envoy metrics (the mesh's `prometheusBindAddress`). */
  readonly metrics: MetricsBinding;
  /**
   * What the servers may do besides cloud auto-join and reading their secret (AWS Private CA as the mesh CA).
   * @default - nothing
   */
  readonly serverPolicyStatements?: readonly PolicyStatement[];
  /** Renders a host group's node spec; read at synthesis, when the whole mesh is known. */
  readonly nodeSpec: (group: VmHostGroupRef, secrets: SecretsSource, gatewayWanAddress: string) => NodeSpec;
  /**
   * Primary only: the rules of the mesh's ACL replication policy, which the primary's servers create; read at
   * synthesis.
   * @default - not the primary
   */
  readonly replicationRules?: () => string;
  /**
   * Primary only: the mesh's config entries as Consul's API takes them (the servers apply them); read at
   * synthesis.
   * @default - not the primary
   */
  readonly configEntries?: () => readonly object[];
}

/** Name of a host group's Secrets Manager entry (hosts read it by name, so user data holds no reference). */
export function secretName(mesh: string, datacenter: string, group: string): string {
  return `meshform/${mesh}/${datacenter}/${group}`;
}

/** A name of at most 32 characters (load balancer and target group names), stable for a given input. */
function shortName(base: string, suffix: string): string {
  const hash = createHash('sha256').update(base).digest('hex').slice(0, 6);
  return `${base.slice(0, 32 - suffix.length - 8)}-${hash}-${suffix}`.replace(/--+/g, '-');
}

type Role = VmRole;

function roleOf(group: NodeRole): Role {
  return group === 'server' ? 'server' : group === 'mesh-gateway' ? 'gateway' : 'client';
}

/**
 * The AWS stack of a VM datacenter: network, one security group per role with rules only between the
 * mesh's own groups and the VPC (each described; only the gateway port may face the internet, and only when
 * the datacenter says so), least-privilege instance roles (cloud auto-join and the role's own secret),
 * the secrets in Secrets Manager, and EC2 hosts booted by cloud-init (IMDSv2 with hop limit 1, encrypted root
 * volumes, no public IP but on an Elastic IP gateway).
 *
 * Every resource exists once the stack is constructed, or once its owner declares what it depends on: a
 * service's host group (`setServices`), the rules to other datacenters' gateways (`setRemoteGateways`), the
 * gateway port's peered sources (`setPeers`) and a peering (`addPeering`). What depends on the whole mesh
 * (agent configuration, ACL plan, secrets documents) is a Lazy value, rendered at synthesis.
 */
export class VmDatacenterStack extends MeshStack {
  /** The network. */
  public readonly network: NetworkRef;
  /** The security groups, by role. */
  public readonly securityGroups: { readonly [role in Role]: SecurityGroup };
  /** The address other datacenters dial, `host:port`. */
  public readonly gatewayWanAddress: string;
  private readonly props: VmDatacenterStackProps;
  private readonly privateRouteTableIds: string[];
  private readonly inputs: SecretVariables;
  private readonly ami: string;
  private readonly lb?: Lb;
  private readonly targetGroup?: LbTargetGroup;
  private readonly gatewayIp?: Eip;
  /** The derived ACL token ids, each a local, by label. */
  private readonly derived = new Map<string, string>();
  private readonly policies: TerraformLocal;
  /** The mesh's config entries (a primary's servers apply them), as a local. */
  private readonly configEntries?: TerraformLocal;
  /** The host groups, in the order their services were declared in the mesh. */
  private readonly groups: VmHostGroupRef[] = [];
  private services: readonly string[] = [];
  /** Each node spec's cloud-init document, rendered once. */
  private readonly cloudInits = new WeakMap<NodeSpec, string>();
  private readonly gatewaySources: ResourceSet<{ readonly cidr: string; readonly why: string }>;
  private readonly remoteGatewayRules: ResourceSet<{
    readonly role: Role;
    readonly target: RemoteGateway;
  }>;

  constructor(scope: Construct, id: string, stackProps: VmDatacenterStackProps) {
    super(scope, id, stackProps);
    // what the user declared about hosts and network reaches only Terraform attributes here: literal text
    const props: VmDatacenterStackProps = {
      ...stackProps,
      instances: terraformLiteral(stackProps.instances),
      network: terraformLiteral(stackProps.network),
    };
    this.props = props;
    const region = props.region;
    awsProvider(this, region, props.mesh, props.datacenter, props.awsEndpoint);
    this.inputs = new SecretVariables(this, 'SecretInputs', props.mesh, props.datacenter, props.primary, true);

    // Network.
    const networkOption = props.network;
    if (networkOption.kind === 'new') {
      const network = new AwsNetwork(this, 'Network', {
        name: id,
        cidr: networkOption.cidr,
        availabilityZones: [...networkOption.availabilityZones],
      });
      this.network = network;
      this.privateRouteTableIds = [...network.privateRouteTableIds];
    } else {
      this.network = {
        vpcId: networkOption.vpcId,
        vpcCidr: networkOption.vpcCidr,
        privateSubnetIds: networkOption.privateSubnetIds,
        publicSubnetIds: networkOption.publicSubnetIds,
      };
      this.privateRouteTableIds = [...networkOption.privateRouteTableIds];
    }

    // Security groups and rules.
    const what = `${props.mesh}/${props.datacenter}`;
    const sg = (role: Role, description: string) =>
      new SecurityGroup(this, `${role}SecurityGroup`, {
        name: `${id}-${role}`,
        description,
        vpcId: this.network.vpcId,
        tags: { Name: `${id}-${role}` },
      });
    this.securityGroups = {
      server: sg('server', `Consul servers of ${what}`),
      client: sg('client', `Consul clients and service hosts of ${what}`),
      gateway: sg('gateway', `Mesh gateways of ${what}`),
    };
    this.meshRules();
    this.gatewaySources = new ResourceSet(this, (scope, ruleId, source) => {
      new VpcSecurityGroupIngressRule(scope, ruleId, {
        securityGroupId: this.securityGroups.gateway.id,
        cidrIpv4: source.cidr,
        ipProtocol: 'tcp',
        fromPort: GATEWAY_LISTEN_PORT,
        toPort: GATEWAY_LISTEN_PORT,
        description: `mesh gateway port from ${source.why}`,
      });
    });
    this.setPeers([]);
    this.httpsEgress();
    this.remoteGatewayRules = new ResourceSet(this, (scope, ruleId, { role, target }) => {
      new VpcSecurityGroupEgressRule(scope, ruleId, {
        securityGroupId: this.securityGroups[role].id,
        ...target.cidr,
        ipProtocol: 'tcp',
        fromPort: target.port,
        toPort: target.port,
        description: `mesh gateway of ${target.datacenter} (${target.where}) on port ${target.port}`,
      });
    });
    this.metricsIngress('gateway');

    // The gateway's public side and the address other datacenters dial.
    const gateway = props.gateway;
    const exposure = gateway.exposure;
    if (exposure.kind === 'load-balancer') {
      const internetFacing = exposure.internetFacing;
      const lb = new Lb(this, 'GatewayLoadBalancer', {
        name: shortName(id, 'mgw'),
        loadBalancerType: 'network',
        internal: !internetFacing,
        subnets: [...(internetFacing ? this.network.publicSubnetIds : this.network.privateSubnetIds)],
        enableCrossZoneLoadBalancing: true,
        tags: { Name: `${id}-mesh-gateway` },
      });
      const targetGroup = new LbTargetGroup(this, 'GatewayTargets', {
        name: shortName(id, 'mgw'),
        port: GATEWAY_LISTEN_PORT,
        protocol: 'TCP',
        targetType: 'instance',
        vpcId: this.network.vpcId,
        preserveClientIp: 'true',
        healthCheck: {
          protocol: 'TCP',
          port: 'traffic-port',
          healthyThreshold: 3,
          unhealthyThreshold: 3,
          interval: 10,
        },
      });
      new LbListener(this, 'GatewayListener', {
        loadBalancerArn: lb.arn,
        port: gateway.port,
        protocol: 'TCP',
        defaultAction: [{ type: 'forward', targetGroupArn: targetGroup.arn }],
      });
      if (exposure.hostedZoneId && gateway.address) {
        new Route53Record(this, 'GatewayRecord', {
          zoneId: escapeTerraformTemplate(exposure.hostedZoneId),
          name: escapeTerraformTemplate(gateway.address),
          type: 'A',
          alias: { name: lb.dnsName, zoneId: lb.zoneId, evaluateTargetHealth: true },
        });
      }
      this.lb = lb;
      this.targetGroup = targetGroup;
    } else {
      this.gatewayIp = new Eip(this, 'GatewayAddress', { domain: 'vpc', tags: { Name: `${id}-mesh-gateway` } });
    }
    this.gatewayWanAddress = gateway.address
      ? gateway.wanEndpoint!
      : this.lb
        ? `${this.lb.dnsName}:${gateway.port}`
        : `${this.gatewayIp!.publicIp}:${gateway.port}`;

    // The ACL plan: every token of the datacenter is derived from the replication token, which every
    // datacenter's stack holds (a secondary never holds the management token). Each derived id is a local
    // (computed once, readable in the plan); the policies' rules hold quotes, so they travel as a JSON local
    // rather than inside a function call.
    this.policies = new TerraformLocal(
      this,
      'meshform_acl_policies',
      Lazy.anyValue({ produce: () => terraformLiteral(this.aclPlan((label) => this.derivedToken(label)).policies) }),
    );
    // The config entries hold user text (filters, regexes, descriptions): a local keeps it JSON data, where
    // quotes and backslashes stay data, instead of text inside the jsonencode(...) expression of a secret.
    this.configEntries = props.primary
      ? new TerraformLocal(
          this,
          'config_entries',
          Lazy.anyValue({ produce: () => terraformLiteral(this.configEntryData()) }),
        )
      : undefined;
    this.deriveTokens();

    // Hosts: the servers and the gateways now, each service's hosts when it is placed here.
    this.ami = this.machineImage(props.instances);
    this.addHostGroup({ name: 'server', role: 'server', services: [] }, props.servers);
    this.addHostGroup({ name: 'mesh-gateway', role: 'mesh-gateway', services: [] }, gateway.replicas);

    new TerraformOutput(this, 'mesh_gateway_wan_address', {
      value: this.gatewayWanAddress,
      description: 'Address other datacenters dial to reach this datacenter',
    });
    // What the declared gateway address's DNS record must point at (meshform publishes it itself only in a
    // hosted zone it is given): the load balancer's DNS name (alias or CNAME), or the Elastic IP (A record).
    const declared = gateway.address ?? 'the gateway address';
    new TerraformOutput(this, 'mesh_gateway_record_target', {
      value: this.lb ? this.lb.dnsName : this.gatewayIp!.publicIp,
      description: this.lb
        ? `DNS name of the gateway's network load balancer: point ${declared} at it (Route 53 alias or CNAME)`
        : `Elastic IP of the gateway: point ${declared} at it (A record)`,
    });
    new TerraformOutput(this, 'vpc_id', { value: this.network.vpcId });
  }

  /**
   * Places the datacenter's services: each gets a host group (its instances, role, secret and boot document)
   * and ACL token. `services` lists every service that runs here, in the mesh's declaration order; a service
   * once placed stays.
   */
  public setServices(services: readonly string[]): void {
    const missing = this.services.filter((s) => !services.includes(s));
    if (missing.length > 0) {
      throw new Error(`internal: services ${missing.join(', ')} left ${this.node.path}, which cannot remove hosts`);
    }
    const added = services.filter((s) => !this.services.includes(s));
    this.services = [...services];
    if (added.length === 0) return;
    this.deriveTokens();
    for (const service of added) {
      const group: VmHostGroupRef = { name: `service-${service}`, role: 'client', services: [service] };
      this.addHostGroup(group, this.props.instances.instancesPerService);
    }
    this.metricsIngress('client');
  }

  /** The sources the gateway port admits besides the VPC and the allowed CIDRs: the peered datacenters. */
  public setPeers(peers: readonly { readonly datacenter: string; readonly cidr: string }[]): void {
    const sources = [
      { cidr: this.network.vpcCidr, why: 'the VPC (load balancer health checks and in-VPC clients)' },
      ...peers.map((p) => ({ cidr: p.cidr, why: `peered datacenter ${p.datacenter}` })),
      ...this.props.gateway.exposure.allowedCidrs.map((cidr) => ({
        cidr,
        why: 'a source the datacenter allows (other datacenters)',
      })),
    ];
    const desired = new Map<string, { cidr: string; why: string }>();
    for (const source of sources) {
      const ruleId = `in-gateway-from-${source.cidr}`;
      if (!desired.has(ruleId)) desired.set(ruleId, source);
    }
    this.gatewaySources.sync(desired);
  }

  /**
   * The other datacenters' mesh gateways, at their declared address and port: gateways dial every one;
   * servers dial the primary's directly (`primary_gateways`) until federation is up, and their own gateways
   * after.
   */
  public setRemoteGateways(targets: readonly RemoteGateway[]): void {
    const desired = new Map<string, { role: Role; target: RemoteGateway }>();
    const seen = new Set<string>();
    for (const target of targets) {
      for (const role of REMOTE_GATEWAY_DIALERS) {
        if (role === 'server' && !target.primary) continue;
        // the HTTPS rule already lets every role out to any address on 443
        if (target.cidr.cidrIpv4 === '0.0.0.0/0' && target.port === 443) continue;
        const key = `${role}|${target.cidr.cidrIpv4 ?? target.cidr.cidrIpv6}|${target.port}`;
        if (seen.has(key)) continue;
        seen.add(key);
        desired.set(`out-${role}-gateway-${target.datacenter}`, { role, target });
      }
    }
    this.remoteGatewayRules.sync(desired);
  }

  /**
   * Peers this datacenter's VPC with another AWS VM datacenter of the region. The peer's VPC and route tables
   * are looked up by the mesh's tags, so this stack never reads the peer's Terraform state.
   */
  public addPeering(peer: VmPeer): void {
    const peerName = `${peer.mesh}-${peer.datacenter}`;
    const tags = { 'meshform:mesh': peer.mesh, 'meshform:datacenter': peer.datacenter };
    const peerVpcId = peer.existingVpc
      ? peer.existingVpc.vpcId
      : new DataAwsVpc(this, `PeerVpc-${peerName}`, { tags }).id;
    const connection = new VpcPeeringConnection(this, `Peering-${peerName}`, {
      vpcId: this.network.vpcId,
      peerVpcId,
      autoAccept: true,
      tags: { Name: `${this.node.id}--${peerName}` },
    });
    this.privateRouteTableIds.forEach(
      (table, i) =>
        new Route(this, `PeeringRoute-${peerName}-${i}`, {
          routeTableId: table,
          destinationCidrBlock: peer.cidr,
          vpcPeeringConnectionId: connection.id,
        }),
    );
    // The return routes go into every private route table of the peer: the ones an existing VPC declares, or
    // the ones meshform made (one per zone, found by their tier tag, in a stable order).
    const returnRoute = (i: number, routeTableId: string) =>
      new Route(this, `PeeringReturnRoute-${peerName}${i === 0 ? '' : `-${i}`}`, {
        routeTableId,
        destinationCidrBlock: this.network.vpcCidr,
        vpcPeeringConnectionId: connection.id,
      });
    if (peer.existingVpc) {
      peer.existingVpc.privateRouteTableIds.forEach((table, i) => returnRoute(i, table));
      return;
    }
    const peerTables = new DataAwsRouteTables(this, `PeerRouteTables-${peerName}`, {
      vpcId: peerVpcId,
      tags: { ...tags, 'meshform:tier': 'private' },
    });
    for (let i = 0; i < peer.availabilityZones; i++) returnRoute(i, Fn.element(Fn.sort(peerTables.ids), i));
  }

  /** The host groups with their node specs as the mesh renders them now (synthesis reads them). */
  public get hostGroups(): HostGroup[] {
    return this.groups.map((group) => ({
      name: group.name,
      role: group.role,
      spec: this.specOf(group),
      count: this.countOf(group),
    }));
  }

  private countOf(group: VmHostGroupRef): number {
    if (group.role === 'server') return this.props.servers;
    if (group.role === 'mesh-gateway') return this.props.gateway.replicas;
    return this.props.instances.instancesPerService;
  }

  private specOf(group: VmHostGroupRef): NodeSpec {
    const secrets: SecretsSource = {
      source: 'aws-secretsmanager',
      secret_id: secretName(this.props.mesh, this.props.datacenter, group.name),
      region: this.props.region,
    };
    return this.props.nodeSpec(group, secrets, this.gatewayWanAddress);
  }

  /** A host group: its secret (readable by its role only), instance role and profile, boot document and hosts. */
  private addHostGroup(group: VmHostGroupRef, count: number): void {
    const props = this.props;
    const id = this.node.id;
    this.groups.push(group);
    const secret = new SecretsmanagerSecret(this, `Secret-${group.name}`, {
      name: secretName(props.mesh, props.datacenter, group.name),
      description: `meshform: secrets of the ${group.name} hosts of ${props.mesh}/${props.datacenter}, read at boot`,
      recoveryWindowInDays: 0,
    });
    const secretRole =
      group.role === 'server'
        ? ({ kind: 'server' } as const)
        : group.role === 'mesh-gateway'
          ? ({ kind: 'mesh-gateway' } as const)
          : ({ kind: 'client', services: group.services } as const);
    // The document holds the secrets: write-only (never in plan or state). Its version changes with the secret
    // store's version of the datacenter's secrets and with what the document says besides them (its
    // expression, the policies and config entries), so either change reaches the hosts' secret.
    const secretDocument = () => {
      const plan = this.aclPlan((label) => this.derivedToken(label));
      const server = secretRole.kind === 'server' && props.primary;
      return Fn.jsonencode(
        roleSecrets(
          secretRole,
          { ...plan, policies: this.policies.expression as unknown as AclPlan['policies'] },
          this.sharedSecrets(),
          server ? (this.configEntries!.expression as unknown as object[]) : undefined,
        ),
      );
    };
    new SecretsmanagerSecretVersion(this, `SecretValue-${group.name}`, {
      secretId: secret.id,
      secretStringWo: Lazy.stringValue({ produce: secretDocument }),
      secretStringWoVersion: Lazy.numberValue({
        produce: () => {
          const what = createHash('sha256')
            .update(
              JSON.stringify(
                resolveTokens(this, [secretDocument(), this.aclPlan(() => '').policies, this.configEntryData()]),
              ),
            )
            .digest('hex')
            .slice(0, 16);
          return Fn.parseint(Fn.substr(Fn.sha256(Fn.join(':', [what, this.inputs.revisionString])), 0, 12), 16);
        },
      }),
    });

    const role = roleOf(group.role);
    const profile = this.instanceProfile(group.name, secret);
    const exposure = props.gateway.exposure;
    const onElasticIp = role === 'gateway' && exposure.kind === 'elastic-ip';
    const subnets = onElasticIp ? this.network.publicSubnetIds : this.network.privateSubnetIds;
    const zonesCount = this.network.privateSubnetIds.length;
    const instances = props.instances;
    const instanceType =
      role === 'server'
        ? instances.serverInstanceType
        : role === 'gateway'
          ? instances.gatewayInstanceType
          : instances.clientInstanceType;
    // The document is a local (a literal string, templates escaped) and gzipped by Terraform: user data
    // is limited to 16 KiB.
    const document = new TerraformLocal(
      this,
      `cloud_init_${group.name.replace(/-/g, '_')}`,
      Lazy.stringValue({ produce: () => escapeTerraformTemplate(this.cloudInitOf(this.specOf(group))) }),
    );
    const userData = Fn.base64gzip(document.asString);
    for (let i = 0; i < count; i++) {
      const instance = new Instance(this, `${group.name}-${i}`, {
        ami: this.ami,
        instanceType,
        subnetId: subnets[i % (onElasticIp ? subnets.length : zonesCount)]!,
        vpcSecurityGroupIds: [this.securityGroups[role].id],
        iamInstanceProfile: profile.name,
        associatePublicIpAddress: false,
        metadataOptions: {
          httpEndpoint: 'enabled',
          httpTokens: 'required',
          httpPutResponseHopLimit: 1,
          instanceMetadataTags: 'disabled',
        },
        rootBlockDevice: {
          encrypted: true,
          volumeType: 'gp3',
          volumeSize: instances.rootVolumeGiB,
          deleteOnTermination: true,
        },
        userDataBase64: userData,
        userDataReplaceOnChange: true,
        tags: {
          Name: `${id}-${group.name}-${i}`,
          'meshform:role': group.role,
          ...(role === 'server' ? { 'meshform-join': props.joinTag } : {}),
        },
      });
      if (this.targetGroup && role === 'gateway') {
        new LbTargetGroupAttachment(this, `GatewayTarget-${i}`, {
          targetGroupArn: this.targetGroup.arn,
          targetId: instance.id,
          port: GATEWAY_LISTEN_PORT,
        });
      }
      if (this.gatewayIp && role === 'gateway') {
        new EipAssociation(this, 'GatewayAddressAssociation', {
          allocationId: this.gatewayIp.allocationId,
          instanceId: instance.id,
        });
      }
    }
  }

  /** The config entries the primary's servers apply (none on a secondary). */
  private configEntryData(): readonly object[] {
    return this.props.primary ? (this.props.configEntries?.() ?? []) : [];
  }

  /** The datacenter's ACL plan (its policies and tokens); `derive` gives each derived token id. */
  private aclPlan(derive: (label: string) => string): AclPlan {
    const props = this.props;
    const replication = this.inputs.value('aclReplicationToken');
    // a VM primary's servers create the mesh's replication token, with the secret id every secondary holds
    return aclPlan(
      props.mesh,
      props.datacenter,
      this.services,
      derive,
      props.primary ? { secretId: replication, rules: props.replicationRules?.() ?? '' } : undefined,
    );
  }

  /** Creates a local for each token id the ACL plan derives that has none yet. */
  private deriveTokens(): void {
    const replication = this.inputs.value('aclReplicationToken');
    // the plan's labels do not depend on the rules, which are only known at synthesis
    const props = this.props;
    aclPlan(
      props.mesh,
      props.datacenter,
      this.services,
      (label) => {
        if (!this.derived.has(label)) {
          const name = `meshform_${label.replace(/[^a-z0-9]+/g, '_')}`;
          this.derived.set(label, new TerraformLocal(this, name, deriveTokenExpression(replication, label)).asString);
        }
        return this.derived.get(label)!;
      },
      props.primary ? { secretId: replication, rules: '' } : undefined,
    );
  }

  private derivedToken(label: string): string {
    const ref = this.derived.get(label);
    if (ref === undefined) throw new Error(`internal: ${this.node.path} derives no ACL token "${label}"`);
    return ref;
  }

  /** The secrets every role's document draws from, as references to the stack's sensitive variables. */
  private sharedSecrets() {
    const inputs = this.inputs;
    return {
      caBundle: inputs.value('caBundle'),
      serverCertificate: inputs.value('serverChain'),
      serverKey: inputs.value('serverKey'),
      clientApi: { certificate: inputs.value('clientApiChain'), key: inputs.value('clientApiKey') },
      gossipKey: inputs.value('gossipKey'),
      aclAdmin: this.props.primary
        ? { management: inputs.value('aclBootstrapToken') }
        : { replication: inputs.value('aclReplicationToken') },
    };
  }

  private meshRules(): void {
    const groups = this.securityGroups;
    for (const [from, to, ports] of MESH_FLOWS) {
      for (const rule of ports) {
        new VpcSecurityGroupIngressRule(this, `in-${to}-from-${from}-${rule.protocol}-${rule.port}`, {
          securityGroupId: groups[to].id,
          referencedSecurityGroupId: groups[from].id,
          ipProtocol: rule.protocol,
          fromPort: rule.port,
          toPort: rule.toPort ?? rule.port,
          description: `${rule.what} from the ${from} group`,
        });
        new VpcSecurityGroupEgressRule(this, `out-${from}-to-${to}-${rule.protocol}-${rule.port}`, {
          securityGroupId: groups[from].id,
          referencedSecurityGroupId: groups[to].id,
          ipProtocol: rule.protocol,
          fromPort: rule.port,
          toPort: rule.toPort ?? rule.port,
          description: `${rule.what} to the ${to} group`,
        });
      }
    }
  }

  private httpsEgress(): void {
    for (const role of ['server', 'client', 'gateway'] as const) {
      new VpcSecurityGroupEgressRule(this, `out-${role}-https`, {
        securityGroupId: this.securityGroups[role].id,
        cidrIpv4: '0.0.0.0/0',
        ipProtocol: 'tcp',
        fromPort: 443,
        toPort: 443,
        description:
          'HTTPS to AWS APIs (Secrets Manager, EC2 auto-join), pinned Consul/Envoy downloads and port-443 mesh gateways',
      });
    }
  }

  /**
   * Sidecar (and gateway) Envoy metrics, when the mesh binds them beyond the loopback interface: from the VPC
   * (where a Prometheus scrapes), on the ports a role's sidecars take (one per sidecar). The gateways' rule
   * exists from the start, the service hosts' once a service is placed here.
   */
  private metricsIngress(role: 'client' | 'gateway'): void {
    const metrics = this.props.metrics;
    const id = `in-${role}-metrics`;
    if (metrics.ip.startsWith('127.') || this.node.tryFindChild(id)) return;
    const ports = () =>
      this.hostGroups
        .filter((g) => roleOf(g.role) === role)
        .flatMap((g) =>
          g.role === 'mesh-gateway' ? [metrics.port] : sidecarMetricsPorts(g.spec.services, metrics.port),
        );
    new VpcSecurityGroupIngressRule(this, id, {
      securityGroupId: this.securityGroups[role].id,
      cidrIpv4: this.network.vpcCidr,
      ipProtocol: 'tcp',
      fromPort: Lazy.numberValue({ produce: () => Math.min(...ports()) }),
      toPort: Lazy.numberValue({ produce: () => Math.max(...ports()) }),
      description: 'Envoy Prometheus metrics (one port per sidecar) from the VPC',
    });
  }

  private machineImage(instances: VmStackInstances): string {
    const image = instances.machineImage;
    if ('amiId' in image) return image.amiId;
    return new DataAwsAmi(this, 'MachineImage', {
      mostRecent: true,
      owners: [image.owner],
      filter: [
        { name: 'name', values: [image.namePattern] },
        { name: 'architecture', values: ['x86_64'] },
        { name: 'virtualization-type', values: ['hvm'] },
      ],
    }).id;
  }

  private instanceProfile(group: string, secret: SecretsmanagerSecret): IamInstanceProfile {
    const name = `${this.node.id}-${group}`;
    const role = new IamRole(this, `Role-${group}`, {
      name,
      description: `meshform ${group} hosts of ${this.props.mesh}/${this.props.datacenter}`,
      assumeRolePolicy: serviceTrustPolicy('ec2.amazonaws.com'),
    });
    new IamRolePolicy(this, `RolePolicy-${group}`, {
      name: 'meshform-host',
      role: role.id,
      policy: policyDocument([
        // DescribeInstances cannot be limited to resources; it is what Consul's cloud auto-join needs.
        { Sid: 'CloudAutoJoin', Effect: 'Allow', Action: ['ec2:DescribeInstances'], Resource: '*' },
        { Sid: 'ReadOwnSecrets', Effect: 'Allow', Action: ['secretsmanager:GetSecretValue'], Resource: secret.arn },
        // Servers sign service mesh certificates with AWS Private CA when it is the mesh CA.
        ...(group === 'server' ? (this.props.serverPolicyStatements ?? []) : []),
      ]),
    });
    return new IamInstanceProfile(this, `Profile-${group}`, { name, role: role.name });
  }

  private cloudInitOf(spec: NodeSpec): string {
    let document = this.cloudInits.get(spec);
    if (document === undefined) {
      document = cloudInit(spec);
      this.cloudInits.set(spec, document);
    }
    return document;
  }

  /** Writes each host group's cloud-init and units under the stack directory, for review and validation. */
  protected override onSynthesized(session: ISynthesisSession): void {
    for (const group of this.hostGroups) {
      const dir = path.join(session.outdir, 'stacks', this.node.id, 'hosts', group.name);
      fs.mkdirSync(path.join(dir, 'systemd'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'cloud-init.yaml'), resolveTokens(this, this.cloudInitOf(group.spec)));
      for (const u of units(group.spec))
        fs.writeFileSync(path.join(dir, 'systemd', u.name), resolveTokens(this, u.content));
    }
  }
}
