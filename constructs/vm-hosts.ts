import type { Service } from './service';

/** The role of one of your own hosts. */
export enum HostRole {
  /** A Consul server (a datacenter has 3 or 5). */
  SERVER = 'server',
  /** A Consul client running services, each with an Envoy sidecar. */
  CLIENT = 'client',
  /** A mesh gateway (a Consul client running Envoy as the datacenter's mesh gateway). */
  MESH_GATEWAY = 'mesh-gateway',
}

/** One of your own hosts (on-premises or any cloud). */
export interface OwnHost {
  /** Host name, unique in the datacenter (an RFC 1123 label); names its bundle directory. */
  readonly name: string;
  /** Private IP address the datacenter's other hosts reach it at. */
  readonly address: string;
  /** What the host runs. */
  readonly role: HostRole;
  /**
   * Services this client host runs (each gets an Envoy sidecar); declares that they run in the datacenter.
   * @default - none
   */
  readonly services?: readonly Service[];
}

/** Options of a new VPC. */
export interface NewVpcOptions {
  /** The VPC block (e.g. "10.20.0.0/16", /16 to /24). */
  readonly cidr: string;
  /**
   * Availability zones: servers are spread over them, one public and one private subnet each.
   * @default - the region's zones a, b and c
   */
  readonly availabilityZones?: readonly string[];
}

/** Options of an existing VPC. */
export interface ExistingVpcOptions {
  /** The VPC's id. */
  readonly vpcId: string;
  /** The VPC's CIDR block (security group rules and overlap checks use it). */
  readonly vpcCidr: string;
  /** Private subnets the hosts run in; servers are spread over them. */
  readonly privateSubnetIds: readonly string[];
  /**
   * Public subnets (for an internet-facing load balancer or Elastic IP gateway).
   * @default - none
   */
  readonly publicSubnetIds?: readonly string[];
  /**
   * Route tables of the private subnets (peering routes are added to them).
   * @default - none
   */
  readonly privateRouteTableIds?: readonly string[];
}

/** The network of an AWS VM datacenter: `VmNetwork.newVpc({...})` or `VmNetwork.existingVpc({...})`. */
export abstract class VmNetwork {
  /** A VPC meshform creates: public and private subnets per zone, internet and NAT gateways. */
  public static newVpc(options: NewVpcOptions): NewVpc {
    return new NewVpc(options ?? ({} as NewVpcOptions));
  }

  /** A VPC you already have. */
  public static existingVpc(options: ExistingVpcOptions): ExistingVpc {
    return new ExistingVpc(options ?? ({} as ExistingVpcOptions));
  }

  /** The VPC block. */
  public abstract get cidr(): string;
}

/** A VPC meshform creates. */
export class NewVpc extends VmNetwork {
  constructor(public readonly options: NewVpcOptions) {
    super();
  }

  public get cidr(): string {
    return this.options.cidr;
  }
}

/** A VPC you already have. */
export class ExistingVpc extends VmNetwork {
  constructor(public readonly options: ExistingVpcOptions) {
    super();
  }

  public get cidr(): string {
    return this.options.vpcCidr;
  }
}

/** The machine image of AWS hosts: `MachineImage.fromId()` or `MachineImage.debian12()`. */
export abstract class MachineImage {
  /** A fixed AMI (reproducible; AMI ids are per region). It must run cloud-init, systemd and python3. */
  public static fromId(amiId: string): MachineImage {
    return new FixedImage(amiId);
  }

  /** The newest official Debian 12 AMI of the region, looked up at plan time (needs AWS credentials to plan). */
  public static debian12(): MachineImage {
    return new LookedUpImage('136693071363', 'debian-12-amd64-*');
  }
}

/** A fixed AMI. */
export class FixedImage extends MachineImage {
  constructor(public readonly amiId: string) {
    super();
  }
}

/** An AMI looked up by owner and name pattern at plan time. */
export class LookedUpImage extends MachineImage {
  constructor(
    public readonly owner: string,
    public readonly namePattern: string,
  ) {
    super();
  }
}

/** Options of a network load balancer in front of the mesh gateways. */
export interface NetworkLoadBalancerOptions {
  /**
   * Whether the load balancer faces the internet (needed when other datacenters reach it over the internet).
   * @default false - internal to the VPC (reachable over peering, VPN or transit)
   */
  readonly internetFacing?: boolean;
  /**
   * Source CIDRs allowed to the gateway port; required when internetFacing is true (e.g. the other
   * datacenters' egress addresses, or "0.0.0.0/0" if you decide so).
   * @default - the VPC block (and peered datacenters' blocks)
   */
  readonly allowedCidrs?: readonly string[];
  /**
   * Route 53 hosted zone in which meshform publishes the declared gateway address as an alias of the
   * load balancer.
   * @default - none: publish it yourself, or use the load balancer's own DNS name
   */
  readonly hostedZoneId?: string;
}

/** Options of Elastic IP gateways. */
export interface ElasticIpOptions {
  /**
   * Source CIDRs allowed to the gateway port.
   * @default - none: only the VPC block (and peered datacenters' blocks)
   */
  readonly allowedCidrs?: readonly string[];
}

/** How AWS mesh gateways get a stable address: `GatewayExposure.networkLoadBalancer()` or `.elasticIp()`. */
export abstract class GatewayExposure {
  /** Gateways behind a network load balancer (TCP, cross-zone) on the gateway port. */
  public static networkLoadBalancer(options: NetworkLoadBalancerOptions = {}): LoadBalancedGateway {
    return new LoadBalancedGateway(options ?? {});
  }

  /** Each gateway on its own Elastic IP, in a public subnet. */
  public static elasticIp(options: ElasticIpOptions = {}): ElasticIpGateway {
    return new ElasticIpGateway(options ?? {});
  }
}

/** Gateways behind a network load balancer. */
export class LoadBalancedGateway extends GatewayExposure {
  constructor(public readonly options: NetworkLoadBalancerOptions) {
    super();
  }
}

/** Gateways on Elastic IPs. */
export class ElasticIpGateway extends GatewayExposure {
  constructor(public readonly options: ElasticIpOptions) {
    super();
  }
}

/** Options of VM hosts that meshform creates on EC2. */
export interface AwsVmHostsOptions {
  /** AWS region. */
  readonly region: string;
  /** The network: `VmNetwork.newVpc({ cidr })` or `VmNetwork.existingVpc({...})`. */
  readonly network: VmNetwork;
  /** The machine image: no default, AMI ids are per region (`MachineImage.fromId()` or `.debian12()`). */
  readonly machineImage: MachineImage;
  /**
   * Instance type of the Consul servers.
   * @default "m6i.large"
   */
  readonly serverInstanceType?: string;
  /**
   * Instance type of the service hosts.
   * @default "t3.medium"
   */
  readonly clientInstanceType?: string;
  /**
   * Instance type of the mesh gateways.
   * @default "t3.medium"
   */
  readonly gatewayInstanceType?: string;
  /**
   * Hosts per service running in the datacenter.
   * @default 2
   */
  readonly instancesPerService?: number;
  /**
   * How the mesh gateways are reached.
   * @default GatewayExposure.networkLoadBalancer() - internal
   */
  readonly gatewayExposure?: GatewayExposure;
  /**
   * Size of every host's encrypted root volume, GiB.
   * @default 30
   */
  readonly rootVolumeGiB?: number;
}

/** Where a VM datacenter's hosts come from: `VmHosts.onAws({...})` or `VmHosts.existing([...])`. */
export abstract class VmHosts {
  /** EC2 instances meshform creates: servers over the zones, service hosts, gateways. */
  public static onAws(options: AwsVmHostsOptions): AwsVmHosts {
    return new AwsVmHosts(options ?? ({} as AwsVmHostsOptions));
  }

  /** Your own hosts (on-premises or another cloud): meshform renders a bundle per host under cdktf.out. */
  public static existing(hosts: readonly OwnHost[]): OwnVmHosts {
    return new OwnVmHosts(hosts);
  }
}

/** EC2 hosts meshform creates. */
export class AwsVmHosts extends VmHosts {
  public readonly serverInstanceType: string;
  public readonly clientInstanceType: string;
  public readonly gatewayInstanceType: string;
  public readonly instancesPerService: number;
  public readonly gatewayExposure: GatewayExposure;
  public readonly rootVolumeGiB: number;

  constructor(public readonly options: AwsVmHostsOptions) {
    super();
    this.serverInstanceType = options.serverInstanceType ?? 'm6i.large';
    this.clientInstanceType = options.clientInstanceType ?? 't3.medium';
    this.gatewayInstanceType = options.gatewayInstanceType ?? 't3.medium';
    this.instancesPerService = options.instancesPerService ?? 2;
    this.gatewayExposure = options.gatewayExposure ?? GatewayExposure.networkLoadBalancer();
    this.rootVolumeGiB = options.rootVolumeGiB ?? 30;
  }
}

/** Your own hosts. */
export class OwnVmHosts extends VmHosts {
  constructor(public readonly hosts: readonly OwnHost[]) {
    super();
  }
}
