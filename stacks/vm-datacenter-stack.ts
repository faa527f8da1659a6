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
import { awsPrivateCaPermissions } from '../constructs/certificate-authority';
import { meshConfigEntries, toApiEntry } from '../constructs/private/config-entries';
import { aclPlan, deriveTokenExpression, replicationRules, roleSecrets } from '../constructs/private/acl';
import { awsProvider, policyDocument, serviceTrustPolicy } from '../constructs/private/aws';
import { AwsNetwork, NetworkRef } from '../constructs/private/aws-network';
import {
  escapeTerraformTemplate,
  Fn,
  type ISynthesisSession,
  resolveTokens,
  TerraformLocal,
  TerraformOutput,
} from '../constructs/private/engine';
import { SecretVariables } from '../constructs/private/secret-variables';
import { cloudInit, GATEWAY_LISTEN_PORT, sidecarMetricsPorts, units } from '../constructs/private/vm-node';
import { MESH_FLOWS, REMOTE_GATEWAY_DIALERS, VmRole } from '../constructs/private/vm-ports';
import { isIpAddress } from '../constructs/private/validation';
import type { HostGroup, VmDatacenter } from '../constructs/vm-datacenter';
import {
  AwsVmHosts,
  ElasticIpGateway,
  ExistingVpc,
  FixedImage,
  LoadBalancedGateway,
  LookedUpImage,
  NewVpc,
} from '../constructs/vm-hosts';
import { MeshStack } from './mesh-stack';

/** Props of a VmDatacenterStack. */
export interface VmDatacenterStackProps {
  /** The datacenter the stack installs. */
  readonly datacenter: VmDatacenter;
}

type Role = VmRole;

/** Another datacenter's mesh gateway as this datacenter's hosts dial it. */
interface RemoteGateway {
  readonly datacenter: string;
  readonly primary: boolean;
  readonly port: number;
  readonly cidr: { readonly cidrIpv4?: string; readonly cidrIpv6?: string };
  readonly where: string;
}

/**
 * Where this datacenter's hosts dial the other datacenters' gateways: the declared address when it is an IP,
 * the peer's VPC block for a peered datacenter reached by name, else anywhere (a DNS name's addresses may
 * change, and an address the platform assigns is not known at synth), always on the declared port.
 */
function remoteGatewayTargets(dc: VmDatacenter): RemoteGateway[] {
  return dc.mesh.datacenters
    .filter((d) => d !== dc)
    .map((d) => {
      const address = d.meshGateway.address;
      const peer = dc.peeredWith.find((p) => p === d);
      const cidr =
        address && isIpAddress(address)
          ? address.includes(':')
            ? { cidrIpv6: `${address}/128` }
            : { cidrIpv4: `${address}/32` }
          : peer
            ? { cidrIpv4: (peer.hosts as AwsVmHosts).options.network.cidr }
            : { cidrIpv4: '0.0.0.0/0' };
      const where = address
        ? peer && !isIpAddress(address)
          ? `${address}, in the peered VPC`
          : address
        : peer
          ? 'in the peered VPC'
          : 'address assigned by its platform';
      return { datacenter: d.name, primary: d.isPrimary, port: d.meshGateway.wanPort, cidr, where };
    });
}

/** Name of a host group's Secrets Manager entry (hosts read it by name, so user data holds no reference). */
export function secretName(dc: VmDatacenter, group: string): string {
  return `meshform/${dc.mesh.name}/${dc.name}/${group}`;
}

/** A name of at most 32 characters (load balancer and target group names), stable for a given input. */
function shortName(base: string, suffix: string): string {
  const hash = createHash('sha256').update(base).digest('hex').slice(0, 6);
  return `${base.slice(0, 32 - suffix.length - 8)}-${hash}-${suffix}`.replace(/--+/g, '-');
}

/**
 * The AWS stack of a VM datacenter: network, one security group per role with rules only between the
 * mesh's own groups and the VPC (each described; only the gateway port may face the internet, and only when
 * the datacenter says so), least-privilege instance roles (cloud auto-join and the role's own secret),
 * the secrets in Secrets Manager, and EC2 hosts booted by cloud-init (IMDSv2 with hop limit 1, encrypted root
 * volumes, no public IP but on an Elastic IP gateway).
 */
export class VmDatacenterStack extends MeshStack {
  /** The network. */
  public readonly network: NetworkRef;
  /** The security groups, by role (after build). */
  public securityGroups!: { readonly [role in Role]: SecurityGroup };
  /** The host groups as rendered, cloud-init with Terraform references (after build). */
  public hostGroups: HostGroup[] = [];
  /** Each host group's cloud-init document as its instances receive it (rendered once), by group name. */
  private readonly cloudInits = new Map<string, string>();
  /** The address other datacenters dial, `host:port` (after build). */
  public gatewayWanAddress!: string;
  private readonly dc: VmDatacenter;
  private readonly privateRouteTableIds: string[];
  private readonly inputs: SecretVariables;
  private built = false;

  constructor(scope: Construct, id: string, props: VmDatacenterStackProps) {
    const dc = props.datacenter;
    super(scope, id, { mesh: dc.mesh, backend: dc.backend });
    this.dc = dc;
    const hosts = dc.hosts as AwsVmHosts;
    const region = hosts.options.region;
    awsProvider(this, region, dc.mesh.name, dc.name, dc.mesh.aws.url);
    this.inputs = new SecretVariables(this, 'SecretInputs', dc.mesh.name, dc.name, dc.isPrimary, true);

    // Network.
    const networkOption = hosts.options.network;
    if (networkOption instanceof NewVpc) {
      const zones = networkOption.options.availabilityZones ?? ['a', 'b', 'c'].map((z) => `${region}${z}`);
      const network = new AwsNetwork(this, 'Network', { name: id, cidr: dc.vpcCidr!, availabilityZones: zones });
      this.network = network;
      this.privateRouteTableIds = [...network.privateRouteTableIds];
    } else {
      const existing = (networkOption as ExistingVpc).options;
      this.network = {
        vpcId: existing.vpcId,
        vpcCidr: existing.vpcCidr,
        privateSubnetIds: existing.privateSubnetIds,
        publicSubnetIds: existing.publicSubnetIds ?? [],
      };
      this.privateRouteTableIds = [...(existing.privateRouteTableIds ?? [])];
    }
  }

  /**
   * Creates what depends on the whole mesh (services, peers, other datacenters' gateway ports): security
   * groups, the gateway's public side, secrets, roles and hosts. Called once by the mesh before synthesis.
   */
  public build(): void {
    if (this.built) return;
    this.built = true;
    const dc = this.dc;
    const id = this.node.id;
    const hosts = dc.hosts as AwsVmHosts;
    const region = hosts.options.region;
    const inputs = this.inputs;
    // Security groups and rules.
    const sg = (role: Role, description: string) =>
      new SecurityGroup(this, `${role}SecurityGroup`, {
        name: `${id}-${role}`,
        description,
        vpcId: this.network.vpcId,
        tags: { Name: `${id}-${role}` },
      });
    this.securityGroups = {
      server: sg('server', `Consul servers of ${dc.mesh.name}/${dc.name}`),
      client: sg('client', `Consul clients and service hosts of ${dc.mesh.name}/${dc.name}`),
      gateway: sg('gateway', `Mesh gateways of ${dc.mesh.name}/${dc.name}`),
    };
    this.meshRules();
    const exposure = hosts.gatewayExposure;
    this.gatewayIngress(exposure);
    this.egressRules();

    // The gateway's public side and the address other datacenters dial.
    const gatewayPort = dc.meshGateway.port;
    let lb: Lb | undefined;
    let targetGroup: LbTargetGroup | undefined;
    let gatewayIp: Eip | undefined;
    if (exposure instanceof LoadBalancedGateway) {
      const internetFacing = exposure.options.internetFacing === true;
      lb = new Lb(this, 'GatewayLoadBalancer', {
        name: shortName(id, 'mgw'),
        loadBalancerType: 'network',
        internal: !internetFacing,
        subnets: [...(internetFacing ? this.network.publicSubnetIds : this.network.privateSubnetIds)],
        enableCrossZoneLoadBalancing: true,
        tags: { Name: `${id}-mesh-gateway` },
      });
      targetGroup = new LbTargetGroup(this, 'GatewayTargets', {
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
        port: gatewayPort,
        protocol: 'TCP',
        defaultAction: [{ type: 'forward', targetGroupArn: targetGroup.arn }],
      });
      if (exposure.options.hostedZoneId && dc.meshGateway.address) {
        new Route53Record(this, 'GatewayRecord', {
          zoneId: exposure.options.hostedZoneId,
          name: dc.meshGateway.address,
          type: 'A',
          alias: { name: lb.dnsName, zoneId: lb.zoneId, evaluateTargetHealth: true },
        });
      }
    } else {
      gatewayIp = new Eip(this, 'GatewayAddress', { domain: 'vpc', tags: { Name: `${id}-mesh-gateway` } });
    }
    this.gatewayWanAddress = dc.meshGateway.address
      ? dc.meshGateway.wanEndpoint!
      : lb
        ? `${lb.dnsName}:${gatewayPort}`
        : `${gatewayIp!.publicIp}:${gatewayPort}`;

    // Secrets: one Secrets Manager entry per host group, readable only by that group's instance role.
    // Every token of the datacenter is derived from the replication token, which every datacenter's stack
    // holds (a secondary never holds the management token). Servers administer ACLs with the management token
    // on the primary and the replication token on secondaries.
    const replication = inputs.value('aclReplicationToken');
    // Each derived id is a local (computed once, readable in the plan); the policies' rules hold quotes, so
    // they travel as a JSON local rather than inside a function call.
    const derived = new Map<string, string>();
    const derive = (label: string) => {
      let ref = derived.get(label);
      if (!ref) {
        const name = `meshform_${label.replace(/[^a-z0-9]+/g, '_')}`;
        ref = new TerraformLocal(this, name, deriveTokenExpression(replication, label)).asString;
        derived.set(label, ref);
      }
      return ref;
    };
    // a VM primary's servers create the mesh's replication token, with the secret id every secondary holds
    const fullPlan = aclPlan(
      dc.mesh.name,
      dc.name,
      dc.services.map((s) => s.name),
      derive,
      dc.isPrimary
        ? {
            secretId: replication,
            rules: replicationRules(dc.mesh.datacenters.map((d) => ({ platform: d.platform, primary: d.isPrimary }))),
          }
        : undefined,
    );
    const policies = new TerraformLocal(this, 'meshform_acl_policies', fullPlan.policies);
    const plan = { ...fullPlan, policies: policies.expression as unknown as typeof fullPlan.policies };
    const shared = {
      caBundle: inputs.value('caBundle'),
      serverCertificate: inputs.value('serverChain'),
      serverKey: inputs.value('serverKey'),
      clientApi: { certificate: inputs.value('clientApiChain'), key: inputs.value('clientApiKey') },
      gossipKey: inputs.value('gossipKey'),
      aclAdmin: dc.isPrimary ? { management: inputs.value('aclBootstrapToken') } : { replication },
    };
    const secretNames = new Map<string, SecretsmanagerSecret>();
    const secretFor = (group: string) => {
      let secret = secretNames.get(group);
      if (!secret) {
        secret = new SecretsmanagerSecret(this, `Secret-${group}`, {
          name: secretName(dc, group),
          description: `meshform: secrets of the ${group} hosts of ${dc.mesh.name}/${dc.name}, read at boot`,
          recoveryWindowInDays: 0,
        });
        secretNames.set(group, secret);
      }
      return secret;
    };
    this.hostGroups = dc.hostGroups((group) => {
      secretFor(group);
      return { source: 'aws-secretsmanager', secret_id: secretName(dc, group), region };
    }, this.gatewayWanAddress);
    this.metricsIngress();
    // The config entries hold user text (filters, regexes, descriptions): a local keeps it JSON data, where
    // quotes and backslashes stay data, instead of text inside the jsonencode(...) expression below.
    const configEntries = dc.isPrimary
      ? (new TerraformLocal(this, 'config_entries', literalData(this.configEntries())).expression as object[])
      : undefined;
    for (const group of this.hostGroups) {
      const secret = secretFor(group.name);
      const role =
        group.role === 'server'
          ? ({ kind: 'server' } as const)
          : group.role === 'mesh-gateway'
            ? ({ kind: 'mesh-gateway' } as const)
            : ({ kind: 'client', services: group.spec.services.map((s) => s.name) } as const);
      new SecretsmanagerSecretVersion(this, `SecretValue-${group.name}`, {
        secretId: secret.id,
        secretString: Fn.jsonencode(
          roleSecrets(role, plan, shared, role.kind === 'server' ? configEntries : undefined),
        ),
      });
    }

    // Hosts.
    const ami = this.machineImage(hosts);
    const zonesCount = this.network.privateSubnetIds.length;
    for (const group of this.hostGroups) {
      const role: Role = group.role === 'server' ? 'server' : group.role === 'mesh-gateway' ? 'gateway' : 'client';
      const profile = this.instanceProfile(group.name, secretFor(group.name));
      const onElasticIp = role === 'gateway' && exposure instanceof ElasticIpGateway;
      const subnets = onElasticIp ? this.network.publicSubnetIds : this.network.privateSubnetIds;
      const instanceType =
        role === 'server'
          ? hosts.serverInstanceType
          : role === 'gateway'
            ? hosts.gatewayInstanceType
            : hosts.clientInstanceType;
      // The document is a local (a literal string, templates escaped) and gzipped by Terraform: user data
      // is limited to 16 KiB.
      const document = new TerraformLocal(
        this,
        `cloud_init_${group.name.replace(/-/g, '_')}`,
        escapeTerraformTemplate(this.cloudInitOf(group)),
      );
      const userData = Fn.base64gzip(document.asString);
      for (let i = 0; i < group.count; i++) {
        const instance = new Instance(this, `${group.name}-${i}`, {
          ami,
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
            volumeSize: hosts.rootVolumeGiB,
            deleteOnTermination: true,
          },
          userDataBase64: userData,
          userDataReplaceOnChange: true,
          tags: {
            Name: `${id}-${group.name}-${i}`,
            'meshform:role': group.role,
            ...(role === 'server' ? { 'meshform-join': dc.joinTag } : {}),
          },
        });
        if (targetGroup && role === 'gateway') {
          new LbTargetGroupAttachment(this, `GatewayTarget-${i}`, {
            targetGroupArn: targetGroup.arn,
            targetId: instance.id,
            port: GATEWAY_LISTEN_PORT,
          });
        }
        if (gatewayIp && role === 'gateway') {
          new EipAssociation(this, 'GatewayAddressAssociation', {
            allocationId: gatewayIp.allocationId,
            instanceId: instance.id,
          });
        }
      }
    }

    new TerraformOutput(this, 'mesh_gateway_wan_address', {
      value: this.gatewayWanAddress,
      description: 'Address other datacenters dial to reach this datacenter',
    });
    // What the declared gateway address's DNS record must point at (meshform publishes it itself only in a
    // hosted zone it is given): the load balancer's DNS name (alias or CNAME), or the Elastic IP (A record).
    const declared = dc.meshGateway.address ?? 'the gateway address';
    new TerraformOutput(this, 'mesh_gateway_record_target', {
      value: lb ? lb.dnsName : gatewayIp!.publicIp,
      description: lb
        ? `DNS name of the gateway's network load balancer: point ${declared} at it (Route 53 alias or CNAME)`
        : `Elastic IP of the gateway: point ${declared} at it (A record)`,
    });
    new TerraformOutput(this, 'vpc_id', { value: this.network.vpcId });
  }

  /**
   * Peers this datacenter's VPC with another AWS VM datacenter of the region. The peer's VPC and route tables
   * are looked up by the mesh's tags, so this stack never reads the peer's Terraform state.
   */
  public addPeering(peer: VmDatacenter): void {
    const peerName = `${peer.mesh.name}-${peer.name}`;
    const tags = { 'meshform:mesh': peer.mesh.name, 'meshform:datacenter': peer.name };
    const peerOptions = (peer.hosts as AwsVmHosts).options.network;
    const peerVpcId =
      peerOptions instanceof ExistingVpc
        ? peerOptions.options.vpcId
        : new DataAwsVpc(this, `PeerVpc-${peerName}`, { tags }).id;
    const connection = new VpcPeeringConnection(this, `Peering-${peerName}`, {
      vpcId: this.network.vpcId,
      peerVpcId,
      autoAccept: true,
      tags: { Name: `${this.node.id}--${peerName}` },
    });
    const peerCidr = peerOptions.cidr;
    this.privateRouteTableIds.forEach(
      (table, i) =>
        new Route(this, `PeeringRoute-${peerName}-${i}`, {
          routeTableId: table,
          destinationCidrBlock: peerCidr,
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
    if (peerOptions instanceof ExistingVpc) {
      (peerOptions.options.privateRouteTableIds ?? []).forEach((table, i) => returnRoute(i, table));
      return;
    }
    const peerTables = new DataAwsRouteTables(this, `PeerRouteTables-${peerName}`, {
      vpcId: peerVpcId,
      tags: { ...tags, 'meshform:tier': 'private' },
    });
    const zones = (peerOptions as NewVpc).options.availabilityZones?.length ?? 3;
    for (let i = 0; i < zones; i++) returnRoute(i, Fn.element(Fn.sort(peerTables.ids), i));
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

  /** The gateway port: from the VPC (load balancer health checks, internal clients), peers, and allowed CIDRs. */
  private gatewayIngress(exposure: LoadBalancedGateway | ElasticIpGateway | unknown): void {
    const allowed = (exposure as LoadBalancedGateway | ElasticIpGateway).options.allowedCidrs ?? [];
    const sources = [
      { cidr: this.network.vpcCidr, why: 'the VPC (load balancer health checks and in-VPC clients)' },
      ...this.dc.peeredWith.map((p) => ({
        cidr: (p.hosts as AwsVmHosts).options.network.cidr,
        why: `peered datacenter ${p.name}`,
      })),
      ...allowed.map((cidr) => ({ cidr, why: 'a source the datacenter allows (other datacenters)' })),
    ];
    const seen = new Set<string>();
    for (const source of sources) {
      if (seen.has(source.cidr)) continue;
      seen.add(source.cidr);
      new VpcSecurityGroupIngressRule(this, `in-gateway-from-${source.cidr}`, {
        securityGroupId: this.securityGroups.gateway.id,
        cidrIpv4: source.cidr,
        ipProtocol: 'tcp',
        fromPort: GATEWAY_LISTEN_PORT,
        toPort: GATEWAY_LISTEN_PORT,
        description: `mesh gateway port from ${source.why}`,
      });
    }
  }

  private egressRules(): void {
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
    // Other datacenters' mesh gateways, at their declared address and port: gateways dial every one; servers
    // dial the primary's directly (`primary_gateways`) until federation is up, and their own gateways after.
    const seen = new Set<string>();
    for (const target of remoteGatewayTargets(this.dc)) {
      for (const role of REMOTE_GATEWAY_DIALERS) {
        if (role === 'server' && !target.primary) continue;
        // the HTTPS rule above already lets every role out to any address on 443
        if (target.cidr.cidrIpv4 === '0.0.0.0/0' && target.port === 443) continue;
        const key = `${role}|${target.cidr.cidrIpv4 ?? target.cidr.cidrIpv6}|${target.port}`;
        if (seen.has(key)) continue;
        seen.add(key);
        new VpcSecurityGroupEgressRule(this, `out-${role}-gateway-${target.datacenter}`, {
          securityGroupId: this.securityGroups[role].id,
          ...target.cidr,
          ipProtocol: 'tcp',
          fromPort: target.port,
          toPort: target.port,
          description: `mesh gateway of ${target.datacenter} (${target.where}) on port ${target.port}`,
        });
      }
    }
  }

  /**
   * Sidecar (and gateway) Envoy metrics, when the mesh binds them beyond the loopback interface: from the VPC
   * (where a Prometheus scrapes), on the ports the host groups' sidecars take (one per sidecar).
   */
  private metricsIngress(): void {
    const groups = this.hostGroups.filter((g) => g.role !== 'server');
    const metrics = groups[0]?.spec.metrics;
    if (!metrics || metrics.ip.startsWith('127.')) return;
    for (const role of ['client', 'gateway'] as const) {
      const ports = groups
        .filter((g) => (g.role === 'mesh-gateway') === (role === 'gateway'))
        .flatMap((g) =>
          g.role === 'mesh-gateway' ? [metrics.port] : sidecarMetricsPorts(g.spec.services, metrics.port),
        );
      if (ports.length === 0) continue;
      new VpcSecurityGroupIngressRule(this, `in-${role}-metrics`, {
        securityGroupId: this.securityGroups[role].id,
        cidrIpv4: this.network.vpcCidr,
        ipProtocol: 'tcp',
        fromPort: Math.min(...ports),
        toPort: Math.max(...ports),
        description: 'Envoy Prometheus metrics (one port per sidecar) from the VPC',
      });
    }
  }

  private machineImage(hosts: AwsVmHosts): string {
    const image = hosts.options.machineImage;
    if (image instanceof FixedImage) return image.amiId;
    const lookup = image as LookedUpImage;
    return new DataAwsAmi(this, 'MachineImage', {
      mostRecent: true,
      owners: [lookup.owner],
      filter: [
        { name: 'name', values: [lookup.namePattern] },
        { name: 'architecture', values: ['x86_64'] },
        { name: 'virtualization-type', values: ['hvm'] },
      ],
    }).id;
  }

  private instanceProfile(group: string, secret: SecretsmanagerSecret): IamInstanceProfile {
    const name = `${this.node.id}-${group}`;
    const role = new IamRole(this, `Role-${group}`, {
      name,
      description: `meshform ${group} hosts of ${this.dc.mesh.name}/${this.dc.name}`,
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
        ...(group === 'server' ? awsPrivateCaPermissions(this.dc.mesh.certificateAuthority, this.dc.caView) : []),
      ]),
    });
    return new IamInstanceProfile(this, `Profile-${group}`, { name, role: role.name });
  }

  /** The mesh's config entries as Consul's API takes them (a primary's servers apply them). */
  private configEntries(): object[] {
    const mesh = this.dc.mesh;
    return meshConfigEntries(
      mesh.services.map((s) => s.describe()),
      mesh.traffic,
    ).map(toApiEntry);
  }

  private cloudInitOf(group: HostGroup): string {
    let document = this.cloudInits.get(group.name);
    if (document === undefined) {
      document = cloudInit(group.spec);
      this.cloudInits.set(group.name, document);
    }
    return document;
  }

  /** Writes each host group's cloud-init and units under the stack directory, for review and validation. */
  protected override onSynthesized(session: ISynthesisSession): void {
    for (const group of this.hostGroups) {
      const dir = path.join(session.outdir, 'stacks', this.node.id, 'hosts', group.name);
      fs.mkdirSync(path.join(dir, 'systemd'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'cloud-init.yaml'), resolveTokens(this, this.cloudInitOf(group)));
      for (const u of units(group.spec))
        fs.writeFileSync(path.join(dir, 'systemd', u.name), resolveTokens(this, u.content));
    }
  }
}

/** Data as Terraform reads it literally from JSON: every string's template sequences escaped. */
function literalData(value: unknown): any {
  if (typeof value === 'string') return escapeTerraformTemplate(value);
  if (Array.isArray(value)) return value.map(literalData);
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [escapeTerraformTemplate(k), literalData(v)]));
  return value;
}
