import { Construct } from 'constructs';
import { Datacenter, DatacenterDescription, DatacenterProps, GatewayReach, Platform } from './datacenter';
import { awsPrivateCaPermissions, CaHosting } from './certificate-authority';
import { errors } from './errors';
import type { Mesh } from './mesh';
import { replicationRules } from './private/acl';
import { checkAgentConfigKeys } from './private/agent-config-keys';
import { meshConfigEntries, toApiEntry } from './private/config-entries';
import { loadExtraAgentConfig, mergeAgentConfig } from './private/agent-merge';
import {
  consulArtifact,
  CpuArchitecture,
  DEFAULT_ENVOY_VERSION,
  envoyArtifact,
  instanceArchitecture,
  knownEnvoyVersions,
  PinnedArtifact,
} from './private/binaries';
import type { ServerCertificateRequest } from './private/ca-material';
import { Cidr, cidrsOverlap, parseCidr } from './private/cidr';
import type { TerraformStack } from './private/engine';
import type { HclObject } from './private/hcl';
import { checkAvailabilityZones, checkInstanceType } from './private/aws-input';
import { checkedList, checkedProps, checkEnum } from './private/guards';
import { isDatacenterName, isIpAddress, isNonEmptyString, isWholeNumber } from './private/validation';
import {
  agentConfig,
  CA_PROVIDER_DIRECTORY,
  HostGroup,
  MetricsBinding,
  NodeRole,
  NodeService,
  NodeSpec,
  SecretsSource,
} from './private/vm-node';
import { Service } from './service';
import {
  AwsVmHosts,
  ElasticIpGateway,
  ExistingVpc,
  FixedImage,
  GatewayExposure,
  HostRole,
  LoadBalancedGateway,
  LookedUpImage,
  MachineImage,
  NewVpc,
  OwnHost,
  OwnVmHosts,
  VmHosts,
  VmNetwork,
} from './vm-hosts';
import { checkVpcCidr } from './kubernetes-datacenter';
import { OWN_HOST_SECRETS, OwnHostsBundles, OwnHostsStack } from '../stacks/own-hosts-stack';
import {
  RemoteGateway,
  VmDatacenterStack,
  VmDatacenterStackProps,
  VmHostGroupRef,
  VmPeer,
} from '../stacks/vm-datacenter-stack';

/** Props of a VmDatacenter. */
export interface VmDatacenterProps extends DatacenterProps {
  /** The hosts: EC2 instances meshform creates (`VmHosts.onAws({...})`) or your own (`VmHosts.existing([...])`). */
  readonly hosts: VmHosts;
  /**
   * Envoy version installed on service hosts and gateways (one with a verified checksum).
   * @default "1.38.4"
   */
  readonly envoyVersion?: string;
  /**
   * Base URL of a mirror of releases.hashicorp.com/consul and of Envoy's GitHub releases (same paths below
   * `<mirror>/consul` and `<mirror>/envoy`); checksums are verified all the same.
   * @default - the upstream release sites
   */
  readonly binaryMirror?: string;
  /**
   * An HCL file of extra agent configuration (relative to the project root), parsed, checked against Consul's
   * keys and merged into every agent's configuration. It may not set what meshform manages (security,
   * federation, ports, paths).
   * @default - none
   */
  readonly extraAgentConfigFile?: string;
}

/**
 * A Consul datacenter on virtual machines: Consul servers (3 or 5), client agents with an Envoy sidecar per
 * service, and mesh gateways, all booted by cloud-init (AWS) or by an install bundle per host (your own
 * hosts). Binaries are pinned and checksum-verified; secrets never travel in user data or bundles: hosts
 * fetch them at boot from AWS Secrets Manager, or read a file you deliver with `meshform secrets host`.
 * Federation with the other datacenters goes through mesh gateways (`primary_gateways`, no WAN gossip).
 */
export class VmDatacenter extends Datacenter {
  public readonly platform = Platform.VIRTUAL_MACHINES;
  /** The hosts. */
  public readonly hosts: VmHosts;
  /** Envoy version. */
  public readonly envoyVersion: string;
  /** Binary mirror. */
  public readonly binaryMirror?: string;
  /**
   * The VPC block of AWS hosts.
   * @internal
   */
  public readonly vpcCidr?: Cidr;
  /** The stack: EC2 hosts (`VmHosts.onAws`) or the install bundles of your own hosts (`VmHosts.existing`). */
  public readonly stack: VmDatacenterStack | OwnHostsStack;
  private readonly extraConfig: HclObject;
  private readonly extraConfigFile?: string;
  private readonly peers: VmDatacenter[] = [];
  /** Node specs by host group, once the mesh is validated for synthesis (it changes no more). */
  private readonly specs = new Map<string, NodeSpec>();

  constructor(scope: Mesh, id: string, props: VmDatacenterProps) {
    super(scope as Construct, id, withServerCount(props), [3, 5]);
    const path = this.node.path;
    this.hosts = props.hosts;
    if (!(this.hosts instanceof VmHosts))
      throw errors.missingValue(
        path,
        'hosts',
        this.hosts,
        'set `hosts: VmHosts.onAws({...})` or `VmHosts.existing([...])`',
      );
    this.envoyVersion = props.envoyVersion ?? DEFAULT_ENVOY_VERSION;
    if (typeof this.envoyVersion !== 'string')
      throw errors.invalidValue(
        path,
        'envoyVersion',
        this.envoyVersion,
        `give a version string such as "${DEFAULT_ENVOY_VERSION}"`,
      );
    this.binaryMirror = props.binaryMirror;
    if (this.binaryMirror !== undefined && !isMirrorUrl(this.binaryMirror))
      throw errors.invalidValue(
        path,
        'binaryMirror',
        this.binaryMirror,
        'give the http(s) base URL of the mirror, without a query or a trailing slash, e.g. "https://mirror.example.com/releases"',
      );
    if (props.extraAgentConfigFile !== undefined && !isNonEmptyString(props.extraAgentConfigFile))
      throw errors.invalidValue(
        path,
        'extraAgentConfigFile',
        props.extraAgentConfigFile,
        'give the path of an HCL file, relative to the project root',
      );
    if (this.hosts instanceof OwnVmHosts) {
      this.checkOwnHosts(path, this.hosts, props);
    } else if (this.hosts instanceof AwsVmHosts) {
      this.vpcCidr = this.checkAwsHosts(path, this.hosts);
    }
    for (const arch of this.architectures()) {
      if (!envoyArtifact(this.envoyVersion, arch)) {
        throw errors.unknownEnvoyVersion(path, this.envoyVersion, arch, knownEnvoyVersions(arch));
      }
    }
    this.extraConfigFile = props.extraAgentConfigFile;
    this.extraConfig = props.extraAgentConfigFile ? loadExtraAgentConfig(path, props.extraAgentConfigFile) : {};
    this.register([this.stackName]);
    if (this.hosts instanceof OwnVmHosts) {
      this.stack = new OwnHostsStack(this, this.stackName, { ...this.stackProps, bundles: () => this.bundles() });
      for (const host of this.hosts.hosts) for (const service of host.services ?? []) service.runsIn(this);
    } else {
      this.stack = new VmDatacenterStack(this, this.stackName, this.awsStackProps(this.hosts as AwsVmHosts));
    }
    this.declared();
  }

  /** The props of the EC2 stack: the hosts as declared, and renderers of what depends on the whole mesh. */
  private awsStackProps(hosts: AwsVmHosts): VmDatacenterStackProps {
    const mesh = this.mesh;
    const o = hosts.options;
    const network = o.network;
    const exposure = hosts.gatewayExposure;
    const image = o.machineImage;
    const gw = this.meshGateway;
    return {
      ...this.stackProps,
      mesh: mesh.name,
      datacenter: this.name,
      primary: this.isPrimary,
      region: o.region,
      awsEndpoint: mesh.aws.url,
      network:
        network instanceof NewVpc
          ? {
              kind: 'new',
              cidr: this.vpcCidr!,
              availabilityZones: network.options.availabilityZones ?? ['a', 'b', 'c'].map((z) => `${o.region}${z}`),
            }
          : {
              kind: 'existing',
              vpcId: (network as ExistingVpc).options.vpcId,
              vpcCidr: (network as ExistingVpc).options.vpcCidr,
              privateSubnetIds: (network as ExistingVpc).options.privateSubnetIds,
              publicSubnetIds: (network as ExistingVpc).options.publicSubnetIds ?? [],
              privateRouteTableIds: (network as ExistingVpc).options.privateRouteTableIds ?? [],
            },
      gateway: {
        exposure:
          exposure instanceof LoadBalancedGateway
            ? {
                kind: 'load-balancer',
                internetFacing: exposure.options.internetFacing === true,
                allowedCidrs: exposure.options.allowedCidrs ?? [],
                hostedZoneId: exposure.options.hostedZoneId,
              }
            : { kind: 'elastic-ip', allowedCidrs: exposureCidrs(exposure) },
        address: gw.address,
        port: gw.port,
        wanEndpoint: gw.wanEndpoint,
        replicas: gw.replicas,
      },
      instances: {
        serverInstanceType: hosts.serverInstanceType,
        clientInstanceType: hosts.clientInstanceType,
        gatewayInstanceType: hosts.gatewayInstanceType,
        instancesPerService: hosts.instancesPerService,
        rootVolumeGiB: hosts.rootVolumeGiB,
        machineImage:
          image instanceof FixedImage
            ? { amiId: image.amiId }
            : { owner: (image as LookedUpImage).owner, namePattern: (image as LookedUpImage).namePattern },
      },
      servers: this.servers,
      joinTag: this.joinTag,
      metrics: metricsBinding(mesh.traffic.prometheusBindAddress),
      serverPolicyStatements: awsPrivateCaPermissions(mesh.certificateAuthority, this.caView),
      nodeSpec: (group, secrets, gatewayWanAddress) => this.groupSpec(group, secrets, gatewayWanAddress),
      ...(this.isPrimary
        ? {
            replicationRules: () =>
              replicationRules(mesh.datacenters.map((d) => ({ platform: d.platform, primary: d.isPrimary }))),
            configEntries: () =>
              meshConfigEntries(
                mesh.services.map((s) => s.describe()),
                mesh.traffic,
              ).map(toApiEntry),
          }
        : {}),
    };
  }

  /** The node spec of one of the EC2 stack's host groups. */
  private groupSpec(group: VmHostGroupRef, secrets: SecretsSource, gatewayWanAddress: string): NodeSpec {
    const cached = this.specs.get(group.name);
    if (cached) return cached;
    const services = group.services.map((name) => this.mesh.services.find((s) => s.name === name)!);
    const spec = this.nodeSpec(
      group.role,
      services,
      instanceArchitecture(this.instanceTypeOf(group.role)),
      secrets,
      undefined,
      group.role === 'mesh-gateway' ? gatewayWanAddress : undefined,
    );
    if (this.mesh.isPrepared) this.specs.set(group.name, spec);
    return spec;
  }

  /** What the install bundles of your own hosts hold. */
  private bundles(): OwnHostsBundles {
    const gateway = (dc: Datacenter) => ({
      address: dc.meshGateway.address,
      wanPort: dc.meshGateway.wanPort,
      wanEndpoint: dc.meshGateway.wanEndpoint,
    });
    return {
      datacenter: this.name,
      primary: this.isPrimary,
      hosts: this.hostGroups(() => ({ source: 'file', path: OWN_HOST_SECRETS }), this.meshGateway.wanEndpoint),
      gateway: gateway(this),
      otherDatacenters: this.mesh.datacenters
        .filter((d) => d !== this)
        .map((d) => ({ name: d.name, primary: d.isPrimary, ...gateway(d) })),
    };
  }

  /**
   * Brings the EC2 stack up to date: a host group for each service placed here, the gateway port open to
   * the peered datacenters, and egress rules to the other datacenters' gateways.
   * @internal
   */
  public override _meshChanged(service?: Service): void {
    const stack = this.stack;
    if (!(stack instanceof VmDatacenterStack)) return;
    if (service) {
      // a service's declaration changes this stack only through the services placed here
      if (service.datacenters.includes(this)) stack.setServices(this.services.map((s) => s.name));
      return;
    }
    stack.setServices(this.services.map((s) => s.name));
    stack.setPeers(this.peeredWith.map((p) => ({ datacenter: p.name, cidr: cidrText(p) })));
    stack.setRemoteGateways(remoteGatewayTargets(this));
  }

  /** This datacenter's VPC as a peer's stack looks it up (EC2 hosts only). */
  private get asPeer(): VmPeer {
    const network = (this.hosts as AwsVmHosts).options.network;
    return {
      mesh: this.mesh.name,
      datacenter: this.name,
      cidr: network.cidr,
      ...(network instanceof ExistingVpc
        ? {
            existingVpc: {
              vpcId: network.options.vpcId,
              privateRouteTableIds: network.options.privateRouteTableIds ?? [],
            },
          }
        : {}),
      availabilityZones: (network as NewVpc).options.availabilityZones?.length ?? 3,
    };
  }

  public get stacks(): readonly TerraformStack[] {
    return [this.stack];
  }

  public get controlPlaneStack(): TerraformStack {
    return this.stack;
  }

  /** The AWS region of EC2 hosts. */
  public get region(): string | undefined {
    return this.hosts instanceof AwsVmHosts ? this.hosts.options.region : undefined;
  }

  /**
   * Connects this datacenter's VPC with another AWS VM datacenter's VPC (same region): a peering connection
   * and routes both ways, so that their mesh gateways reach each other privately. Their CIDRs must not overlap.
   */
  public peerWith(other: VmDatacenter): this {
    if (!(other instanceof VmDatacenter))
      throw errors.notADatacenter(
        this.node.path,
        'the datacenter to peer with',
        other,
        this.mesh.datacenters.filter((d) => d instanceof VmDatacenter && d !== this).map((d) => d.name),
      );
    if (other === this)
      throw errors.invalidValue(
        this.node.path,
        'the datacenter to peer with',
        other.name,
        'peer with another VM datacenter',
      );
    if (!(this.hosts instanceof AwsVmHosts)) throw errors.peeringNotAws(this.node.path, this.node.path);
    if (!(other.hosts instanceof AwsVmHosts)) throw errors.peeringNotAws(this.node.path, other.node.path);
    if (this.region !== other.region) throw errors.peeringRegion(this.node.path, other.node.path);
    if (this.peeredWith.includes(other)) return this;
    this.peers.push(other);
    // The peering lives in the stack that deploys later (never the primary's), after the peer's VPC exists.
    const [owner, peer] = this.isPrimary ? [other, this] : [this, other];
    (owner.stack as VmDatacenterStack).addPeering(peer.asPeer);
    owner.stack.addDependency(peer.stack);
    this.mesh._changed(this);
    return this;
  }

  /** Datacenters this one peers with (in either direction). */
  public get peeredWith(): readonly VmDatacenter[] {
    const inbound = this.mesh.datacenters.filter(
      (d): d is VmDatacenter => d instanceof VmDatacenter && d.peers.includes(this),
    );
    return [...new Set([...this.peers, ...inbound])];
  }

  /** Datacenters this one initiated peering with (it owns those peering resources). */
  public get peeringsInitiated(): readonly VmDatacenter[] {
    return [...this.peers];
  }

  public validateInMesh(): void {
    const path = this.node.path;
    for (const other of this.peeredWith) {
      if (this.vpcCidr && other.vpcCidr && cidrsOverlap(this.vpcCidr, other.vpcCidr)) {
        throw errors.cidrOverlap(path, cidrText(this), other.node.path, cidrText(other));
      }
    }
    if (this.hosts instanceof OwnVmHosts) {
      const placed = new Set(this.hosts.hosts.flatMap((h) => (h.services ?? []).map((s) => s.name)));
      for (const service of this.mesh.servicesIn(this)) {
        if (!placed.has(service.name)) throw errors.serviceNotPlaced(service.node.path, service.name, this.name);
      }
    }
  }

  /** The services that run here. */
  public get services(): Service[] {
    return this.mesh.servicesIn(this);
  }

  /**
   * The host groups (AWS) or hosts (own), each with its node spec.
   * @internal
   */
  public hostGroups(secrets: (role: HostGroup['name']) => SecretsSource, gatewayWanAddress?: string): HostGroup[] {
    const make = (
      name: string,
      role: NodeRole,
      services: readonly Service[],
      count: number,
      host?: OwnHost,
    ): HostGroup => {
      const arch = this.hosts instanceof AwsVmHosts ? instanceArchitecture(this.instanceTypeOf(role)) : 'amd64';
      const spec = this.nodeSpec(
        role,
        services,
        arch,
        secrets(name),
        host?.address,
        role === 'mesh-gateway' ? gatewayWanAddress : undefined,
      );
      return { name, role, spec, count, ...(host ? { address: host.address } : {}) };
    };
    if (this.hosts instanceof OwnVmHosts) {
      return this.hosts.hosts.map((h) => make(h.name, h.role as NodeRole, h.services ?? [], 1, h));
    }
    const aws = this.hosts as AwsVmHosts;
    return [
      make('server', 'server', [], this.servers),
      make('mesh-gateway', 'mesh-gateway', [], this.meshGateway.replicas),
      ...this.services.map((s) => make(`service-${s.name}`, 'client', [s], aws.instancesPerService)),
    ];
  }

  /**
   * On AWS: internet-facing NLB or Elastic IP, else the VPC (and peered VPCs) only. On your own hosts: the
   * declared gateway address is taken as reachable by the other datacenters, else only the local network.
   */
  protected get gatewayReach(): GatewayReach {
    const hosts = this.hosts;
    if (hosts instanceof AwsVmHosts) {
      const exposure = hosts.gatewayExposure;
      return exposure instanceof LoadBalancedGateway && !exposure.options.internetFacing ? 'network' : 'internet';
    }
    return this.meshGateway.address ? 'internet' : 'network';
  }

  protected get caProviderFileDirectory(): string {
    return CA_PROVIDER_DIRECTORY;
  }

  public get hosting(): CaHosting {
    return this.hosts instanceof AwsVmHosts ? 'ec2' : 'own-hosts';
  }

  /**
   * The server certificate: Consul's names, and the server hosts' addresses when they are known; and a
   * certificate for the client agents' local HTTPS API.
   * @internal
   */
  public serverCertificateRequest(): ServerCertificateRequest {
    const base = this.baseServerNames();
    const ownServers =
      this.hosts instanceof OwnVmHosts
        ? this.hosts.hosts.filter((h) => h.role === HostRole.SERVER).map((h) => h.address)
        : [];
    return {
      datacenter: this.name,
      dnsNames: base.dnsNames,
      ipAddresses: [...base.ipAddresses, ...ownServers],
      clientApi: true,
    };
  }

  /** The cloud auto-join tag value of this datacenter's servers. */
  public get joinTag(): string {
    return this.stackName;
  }

  private nodeSpec(
    role: NodeRole,
    services: readonly Service[],
    arch: CpuArchitecture,
    secrets: SecretsSource,
    address?: string,
    gatewayWanAddress?: string,
  ): NodeSpec {
    const mesh = this.mesh;
    const artifacts: PinnedArtifact[] = [consulArtifact(mesh.consulVersion, arch, this.binaryMirror)!];
    if (role !== 'server') artifacts.push(envoyArtifact(this.envoyVersion, arch, this.binaryMirror)!);
    const retryJoin =
      this.hosts instanceof AwsVmHosts
        ? [`provider=aws region=${this.hosts.options.region} tag_key=meshform-join tag_value=${this.joinTag}`]
        : (this.hosts as OwnVmHosts).hosts.filter((h) => h.role === HostRole.SERVER).map((h) => h.address);
    const nodeServices: NodeService[] = services.map((s) => {
      const upstreams = s.describe().upstreams;
      return { name: s.name, port: s.port, protocol: s.protocol, ...(upstreams ? { upstreams } : {}) };
    });
    const base = {
      mesh: mesh.name,
      datacenter: this.name,
      domain: mesh.domain,
      primary: this.isPrimary,
      primaryDatacenter: mesh.primary.name,
      role,
      servers: this.servers,
      retryJoin,
      primaryGateways: this.isPrimary ? [] : mesh.federation.primaryGateways,
      services: nodeServices,
      artifacts,
      secrets,
      connectCa: mesh.certificateAuthority.connectConfig(this.caView),
      caProviderFiles: role === 'server' ? mesh.certificateAuthority.providerFiles() : [],
      metrics: metricsBinding(mesh.traffic.prometheusBindAddress),
      ...(address ? { address } : {}),
      ...(gatewayWanAddress ? { gatewayWanAddress } : {}),
    };
    const config = mergeAgentConfig(agentConfig({ ...base, agentConfig: {} }), this.extraConfig);
    return { ...base, agentConfig: config };
  }

  private instanceTypeOf(role: NodeRole): string {
    const aws = this.hosts as AwsVmHosts;
    return role === 'server'
      ? aws.serverInstanceType
      : role === 'mesh-gateway'
        ? aws.gatewayInstanceType
        : aws.clientInstanceType;
  }

  private architectures(): CpuArchitecture[] {
    if (!(this.hosts instanceof AwsVmHosts)) return ['amd64'];
    // Envoy runs on gateways and service hosts.
    return [...new Set([this.hosts.gatewayInstanceType, this.hosts.clientInstanceType].map(instanceArchitecture))];
  }

  private checkAwsHosts(path: string, hosts: AwsVmHosts): Cidr {
    const o = hosts.options;
    if (typeof o.region !== 'string' || !/^[a-z]{2}(-[a-z]+)+-\d$/.test(o.region))
      throw errors.invalidRegion(path, o.region);
    const image: MachineImage | undefined = o.machineImage;
    if (!image) throw errors.missingMachineImage(path);
    if (!(image instanceof MachineImage))
      throw errors.missingValue(
        path,
        'machineImage',
        image,
        'use MachineImage.fromId("ami-...") or MachineImage.debian12()',
      );
    if (image instanceof FixedImage && (typeof image.amiId !== 'string' || !/^ami-[0-9a-f]{8,17}$/.test(image.amiId)))
      throw errors.invalidAmi(path, image.amiId);
    checkInstanceType(path, 'serverInstanceType', hosts.serverInstanceType);
    checkInstanceType(path, 'clientInstanceType', hosts.clientInstanceType);
    checkInstanceType(path, 'gatewayInstanceType', hosts.gatewayInstanceType);
    if (!isWholeNumber(hosts.instancesPerService, 1, 100))
      throw errors.numberOutOfRange(path, 'instancesPerService', hosts.instancesPerService, 1, 100);
    // gp3 volumes are 1 GiB to 16 TiB; the image needs 8 GiB
    if (!isWholeNumber(hosts.rootVolumeGiB, 8, 16384))
      throw errors.numberOutOfRange(path, 'rootVolumeGiB', hosts.rootVolumeGiB, 8, 16384);
    const network = o.network;
    if (!(network instanceof VmNetwork))
      throw errors.missingValue(
        path,
        'network',
        network,
        'use VmNetwork.newVpc({ cidr }) or VmNetwork.existingVpc({...})',
      );
    let cidr: Cidr;
    if (network instanceof NewVpc) {
      const options = checkedProps(path, 'network options', network.options, 'pass `{ cidr: "10.20.0.0/16" }`');
      cidr = checkVpcCidr(path, options.cidr, 24);
      checkAvailabilityZones(path, o.region, options.availabilityZones ?? [`${o.region}a`], 1);
    } else {
      const existing = network as ExistingVpc;
      checkedProps(path, 'network options', existing.options, 'pass `{ vpcId, vpcCidr, privateSubnetIds }`');
      checkAwsIds(path, 'vpcId', [existing.options.vpcId], 'vpc', 1);
      checkAwsIds(path, 'privateSubnetIds', existing.options.privateSubnetIds, 'subnet', 1);
      checkAwsIds(path, 'publicSubnetIds', existing.options.publicSubnetIds ?? [], 'subnet', 0);
      checkAwsIds(path, 'privateRouteTableIds', existing.options.privateRouteTableIds ?? [], 'rtb', 0);
      const parsed = parseCidr(existing.options.vpcCidr);
      if (!parsed.ok) {
        if (parsed.reason === 'host-bits')
          throw errors.cidrHostBits(path, 'VPC CIDR', existing.options.vpcCidr, parsed.canonical!);
        throw errors.malformedCidr(path, 'VPC CIDR', existing.options.vpcCidr);
      }
      cidr = parsed.cidr;
      if (existing.options.privateSubnetIds.length === 0) throw errors.emptyValue(path, 'privateSubnetIds');
    }
    const exposure = hosts.gatewayExposure;
    if (!(exposure instanceof GatewayExposure))
      throw errors.missingValue(
        path,
        'gatewayExposure',
        exposure,
        'use GatewayExposure.networkLoadBalancer({...}) or GatewayExposure.elasticIp({...})',
      );
    const exposureOptions = checkedProps(
      path,
      'gatewayExposure options',
      (exposure as LoadBalancedGateway | ElasticIpGateway).options,
      'pass an options object',
    );
    if (exposure instanceof LoadBalancedGateway) {
      const lb = exposureOptions as LoadBalancedGateway['options'];
      if (lb.internetFacing !== undefined && typeof lb.internetFacing !== 'boolean')
        throw errors.invalidValue(path, 'internetFacing', lb.internetFacing, 'use true or false');
      if (
        lb.hostedZoneId !== undefined &&
        (typeof lb.hostedZoneId !== 'string' || !/^Z[A-Z0-9]{1,31}$/.test(lb.hostedZoneId))
      )
        throw errors.invalidAwsId(path, 'hostedZoneId', lb.hostedZoneId, 'Z0123456789ABCDEFGHIJ');
    }
    checkedList(
      path,
      'allowedCidrs',
      exposureOptions.allowedCidrs,
      'give a list of CIDR blocks, e.g. ["198.51.100.0/24"]',
    );
    if (
      exposure instanceof LoadBalancedGateway &&
      exposure.options.internetFacing &&
      !exposure.options.allowedCidrs?.length
    ) {
      throw errors.internetFacingWithoutCidrs(path);
    }
    if (exposure instanceof ElasticIpGateway && this.meshGateway.replicas !== 1) {
      throw errors.elasticIpReplicas(path, this.meshGateway.replicas);
    }
    const needsPublic =
      exposure instanceof ElasticIpGateway ||
      (exposure instanceof LoadBalancedGateway && exposure.options.internetFacing === true);
    if (needsPublic && network instanceof ExistingVpc && !network.options.publicSubnetIds?.length)
      throw errors.noPublicSubnets(path);
    for (const allowed of exposureCidrs(exposure)) {
      const parsed = parseCidr(allowed);
      if (!parsed.ok) {
        if (parsed.reason === 'host-bits') throw errors.cidrHostBits(path, 'allowed CIDR', allowed, parsed.canonical!);
        throw errors.malformedCidr(path, 'allowed CIDR', allowed);
      }
    }
    return cidr;
  }

  private checkOwnHosts(path: string, hosts: OwnVmHosts, props: VmDatacenterProps): void {
    const names = new Set<string>();
    const addresses = new Set<string>();
    if (!Array.isArray(hosts.hosts) || hosts.hosts.length === 0)
      throw errors.missingValue(
        path,
        'hosts',
        hosts.hosts,
        'list your hosts: `VmHosts.existing([{ name, address, role }, ...])`',
      );
    for (const host of hosts.hosts) {
      if (typeof host !== 'object' || host === null)
        throw errors.missingValue(path, 'a host', host, 'describe each host as `{ name, address, role, services }`');
      if (!isDatacenterName(host.name))
        throw errors.invalidName(
          path,
          'host name',
          host.name,
          String(host.name)
            .toLowerCase()
            .replace(/[^a-z0-9-]/g, '-')
            .replace(/^-+|-+$/g, '') || 'host-1',
        );
      checkEnum(path, `role of host "${host.name}"`, host.role, HostRole, 'HostRole.SERVER, CLIENT or MESH_GATEWAY');
      if (host.role === undefined)
        throw errors.missingValue(
          path,
          `role of host "${host.name}"`,
          host.role,
          'set `role: HostRole.SERVER`, CLIENT or MESH_GATEWAY',
        );
      for (const service of checkedList(
        path,
        `services of host "${host.name}"`,
        host.services,
        'give a list of Services',
      )) {
        if (!Service.isService(service)) throw errors.notAService(path, `a service of host "${host.name}"`, service);
        if (service.mesh !== this.mesh)
          throw errors.datacenterOfOtherMesh(
            service.node.path,
            service.name,
            this.name,
            this.mesh.name,
            service.mesh.datacenters.map((d) => d.name),
          );
      }
      if (names.has(host.name)) throw errors.duplicateHost(path, 'name', host.name);
      names.add(host.name);
      if (!isIpAddress(host.address)) throw errors.invalidHostAddress(path, host.name, host.address);
      if (addresses.has(host.address)) throw errors.duplicateHost(path, 'address', host.address);
      addresses.add(host.address);
      if (host.role !== HostRole.CLIENT && (host.services ?? []).length > 0)
        throw errors.servicesOnNonClient(path, host.name, host.role);
    }
    const serverHosts = hosts.hosts.filter((h) => h.role === HostRole.SERVER).length;
    if (props.servers !== undefined && props.servers !== serverHosts)
      throw errors.serverCountMismatch(path, props.servers, serverHosts);
    if (!hosts.hosts.some((h) => h.role === HostRole.MESH_GATEWAY)) {
      throw errors.missingRole(
        path,
        'mesh-gateway',
        'add a host with `role: HostRole.MESH_GATEWAY`: every datacenter federates through its mesh gateway',
      );
    }
  }

  /** Keys of the merged agent configuration Consul does not accept (should be none; checked in tests). */
  public agentConfigProblems(): string[] {
    const groups = this.hostGroups(() => ({ source: 'file', path: OWN_HOST_SECRETS }));
    return groups.flatMap((g) =>
      checkAgentConfigKeys(g.spec.agentConfig).map((p) => `${g.name}: ${p.path} (${p.problem})`),
    );
  }

  public describe(): DatacenterDescription {
    const gw = this.meshGateway;
    const mesh = this.mesh;
    const hosts = this.hosts;
    const lines: string[] = [];
    if (hosts instanceof AwsVmHosts) {
      const network = hosts.options.network;
      lines.push(
        network instanceof NewVpc
          ? `infra: new VPC ${network.options.cidr} in ${hosts.options.region}, private subnets, NAT`
          : `infra: existing VPC ${(network as ExistingVpc).options.vpcId} (${network.cidr}) in ${hosts.options.region}`,
      );
      lines.push(
        `${this.servers} Consul servers (${hosts.serverInstanceType}) spread over zones, ` +
          `${this.services.length * hosts.instancesPerService} service hosts (${hosts.clientInstanceType}), ` +
          `${gw.replicas} mesh gateway${gw.replicas === 1 ? '' : 's'} (${hosts.gatewayInstanceType})`,
      );
      const exposure = hosts.gatewayExposure;
      lines.push(
        exposure instanceof LoadBalancedGateway
          ? `mesh gateway behind an ${exposure.options.internetFacing ? 'internet-facing' : 'internal'} network load balancer on :${gw.port}`
          : `mesh gateway on Elastic IP${gw.replicas === 1 ? '' : 's'} on :${gw.port}`,
      );
      lines.push('secrets in AWS Secrets Manager (one entry per role), read at boot by that role only');
      lines.push('hosts: IMDSv2 (hop limit 1), encrypted root volumes, no public IPs on servers and clients');
    } else {
      const own = hosts as OwnVmHosts;
      const count = (role: HostRole) => own.hosts.filter((h) => h.role === role).length;
      lines.push(
        `your own hosts: ${count(HostRole.SERVER)} servers, ${count(HostRole.CLIENT)} clients, ${count(HostRole.MESH_GATEWAY)} mesh gateways; ` +
          `one install bundle per host under bundles/${this.stackName}/`,
      );
      lines.push('secrets delivered per host with `meshform secrets host`, never in the bundles');
    }
    lines.push(
      `Consul ${mesh.consulVersion} and Envoy ${this.envoyVersion}, checksum-verified; cloud auto-join/retry_join; ` +
        `TLS verify + auto-encrypt, ACLs default deny, gossip encryption with verify`,
    );
    if (this.services.length > 0)
      lines.push(`services with Envoy sidecars: ${this.services.map((s) => `${s.name}:${s.port}`).join(', ')}`);
    if (this.extraConfigFile) lines.push(`extra agent config merged from ${this.extraConfigFile}`);
    if (this.isPrimary) {
      const count = meshConfigEntries(
        mesh.services.map((sv) => sv.describe()),
        mesh.traffic,
      ).length;
      lines.push(
        `config entries (replicated to every datacenter): ${count}, applied by the servers through Consul's API (meshform-config-entries.timer)`,
      );
    }
    const exposure =
      hosts instanceof AwsVmHosts
        ? hosts.gatewayExposure instanceof LoadBalancedGateway
          ? `${hosts.gatewayExposure.options.internetFacing ? 'internet-facing' : 'internal'} NLB :${gw.port}`
          : `Elastic IP :${gw.port}`
        : 'own hosts';
    return this.describeWith(lines, exposure, {
      services: this.services.map((s) => s.name),
      ...(this.peeredWith.length ? { peeredWith: this.peeredWith.map((p) => p.name).sort() } : {}),
      ...(hosts instanceof OwnVmHosts
        ? {
            ownHosts: hosts.hosts.map((h) => ({
              name: h.name,
              address: h.address,
              role: h.role,
              services: (h.services ?? []).map((s) => s.name),
            })),
          }
        : {}),
    });
  }
}

/** The mesh's `ip:port` Prometheus bind address (checked by the mesh) as address and first port. */
function metricsBinding(bindAddress: string): MetricsBinding {
  const at = bindAddress.lastIndexOf(':');
  return { ip: bindAddress.slice(0, at), port: Number(bindAddress.slice(at + 1)) };
}

function withServerCount(props: VmDatacenterProps): DatacenterProps {
  if (props && props.hosts instanceof OwnVmHosts && Array.isArray(props.hosts.hosts) && props.servers === undefined) {
    return { ...props, servers: props.hosts.hosts.filter((h) => h.role === HostRole.SERVER).length };
  }
  return props;
}

/** An http(s) URL with no query, fragment or trailing slash: paths are appended to it. */
function isMirrorUrl(url: unknown): boolean {
  if (typeof url !== 'string' || url.endsWith('/')) return false;
  try {
    const parsed = new URL(url);
    return (
      /^https?:$/.test(parsed.protocol) &&
      parsed.search === '' &&
      parsed.hash === '' &&
      url === parsed.href.replace(/\/$/, '')
    );
  } catch {
    return false;
  }
}

/** Refuses AWS ids that are not `<kind>-<8 or 17 hex digits>`, and a list shorter than `min`. */
function checkAwsIds(path: string, what: string, ids: unknown, kind: string, min: number): void {
  const example = `${kind}-0123456789abcdef0`;
  if (!Array.isArray(ids) || ids.length < min) throw errors.invalidAwsId(path, what, ids, example);
  for (const id of ids) {
    if (typeof id !== 'string' || !new RegExp(`^${kind}-([0-9a-f]{8}|[0-9a-f]{17})$`).test(id))
      throw errors.invalidAwsId(path, what, id, example);
  }
}

function exposureCidrs(exposure: unknown): readonly string[] {
  if (exposure instanceof LoadBalancedGateway || exposure instanceof ElasticIpGateway)
    return exposure.options.allowedCidrs ?? [];
  return [];
}

function cidrText(dc: VmDatacenter): string {
  const network = (dc.hosts as AwsVmHosts).options.network;
  return network.cidr;
}

/**
 * Where a datacenter's hosts dial the other datacenters' gateways: the declared address when it is an IP,
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
            ? { cidrIpv4: cidrText(peer) }
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
