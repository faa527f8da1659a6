import { Eip } from '@cdktf/provider-aws/lib/eip';
import { InternetGateway } from '@cdktf/provider-aws/lib/internet-gateway';
import { NatGateway } from '@cdktf/provider-aws/lib/nat-gateway';
import { Route } from '@cdktf/provider-aws/lib/route';
import { RouteTable } from '@cdktf/provider-aws/lib/route-table';
import { RouteTableAssociation } from '@cdktf/provider-aws/lib/route-table-association';
import { Subnet } from '@cdktf/provider-aws/lib/subnet';
import { Vpc } from '@cdktf/provider-aws/lib/vpc';
import { Construct } from 'constructs';
import { Cidr, cidrSubnet, formatCidr } from './cidr';
import { TerraformOutput } from './engine';

/** What a new VPC is made of. */
export interface AwsNetworkProps {
  /** Name prefix of every resource. */
  readonly name: string;
  /** The VPC block (already validated). */
  readonly cidr: Cidr;
  /** Zones: one public and one private subnet each. */
  readonly availabilityZones: readonly string[];
  /** Extra tags of public subnets (e.g. for Kubernetes load balancers). */
  readonly publicSubnetTags?: { readonly [key: string]: string };
  /** Extra tags of private subnets. */
  readonly privateSubnetTags?: { readonly [key: string]: string };
}

/** The network a datacenter's hosts use, whether meshform created it or not. */
export interface NetworkRef {
  readonly vpcId: string;
  readonly vpcCidr: string;
  readonly privateSubnetIds: readonly string[];
  readonly publicSubnetIds: readonly string[];
}

/** The tag every NAT gateway's Elastic IP carries: how a datacenter's egress addresses are looked up. */
export const EGRESS_TAG = { key: 'meshform:egress', value: 'nat' } as const;

/**
 * A new VPC: a public and a private subnet per zone (the block is split in 16; public subnets take the first
 * slices, private ones the slices from 8 on), an internet gateway for the public subnets, and in each zone a
 * NAT gateway (on an Elastic IP tagged `meshform:egress = nat`) with the private route table of that zone's
 * private subnet: losing a zone leaves the others' egress intact. Its egress addresses are a stack output
 * (`egress_addresses`), to allow-list them where other datacenters are reached (e.g. a Kubernetes API).
 */
export class AwsNetwork extends Construct implements NetworkRef {
  public readonly vpcId: string;
  public readonly vpcCidr: string;
  public readonly privateSubnetIds: string[];
  public readonly publicSubnetIds: string[];
  /** The private route tables, one per zone (peering routes go into each). */
  public readonly privateRouteTableIds: string[];
  /** The NAT gateways' public addresses, one per zone. */
  public readonly egressAddresses: string[];

  constructor(scope: Construct, id: string, props: AwsNetworkProps) {
    super(scope, id);
    const vpc = new Vpc(this, 'Vpc', {
      cidrBlock: formatCidr(props.cidr),
      enableDnsHostnames: true,
      enableDnsSupport: true,
      tags: { Name: props.name },
    });
    this.vpcId = vpc.id;
    this.vpcCidr = formatCidr(props.cidr);
    const igw = new InternetGateway(this, 'InternetGateway', { vpcId: vpc.id, tags: { Name: props.name } });

    const publicRoutes = this.routeTable(props, 'public', 'PublicRoutes', { gatewayId: igw.id });
    const publicSubnets = props.availabilityZones.map((zone, i) => {
      const subnet = this.subnet(props, 'public', zone, i, props.publicSubnetTags);
      new RouteTableAssociation(this, `PublicAssociation${i}`, { subnetId: subnet.id, routeTableId: publicRoutes.id });
      return subnet;
    });

    const privateTables: RouteTable[] = [];
    const addresses: Eip[] = [];
    const privateSubnets = props.availabilityZones.map((zone, i) => {
      // the first zone keeps the ids of the single NAT gateway and route table of earlier versions
      const n = i === 0 ? '' : String(i);
      const address = new Eip(this, `NatAddress${n}`, {
        domain: 'vpc',
        tags: { Name: `${props.name}-nat-${zone}`, [EGRESS_TAG.key]: EGRESS_TAG.value },
      });
      const nat = new NatGateway(this, `NatGateway${n}`, {
        allocationId: address.id,
        subnetId: publicSubnets[i]!.id,
        tags: { Name: `${props.name}-${zone}` },
        dependsOn: [igw],
      });
      const routes = this.routeTable(props, 'private', `PrivateRoutes${n}`, { natGatewayId: nat.id }, zone, n);
      const subnet = this.subnet(props, 'private', zone, i, props.privateSubnetTags);
      new RouteTableAssociation(this, `PrivateAssociation${i}`, { subnetId: subnet.id, routeTableId: routes.id });
      privateTables.push(routes);
      addresses.push(address);
      return subnet;
    });

    this.publicSubnetIds = publicSubnets.map((s) => s.id);
    this.privateSubnetIds = privateSubnets.map((s) => s.id);
    this.privateRouteTableIds = privateTables.map((t) => t.id);
    this.egressAddresses = addresses.map((a) => a.publicIp);
    const output = new TerraformOutput(this, 'EgressAddresses', {
      value: this.egressAddresses,
      description: "Public addresses the network's private subnets reach the internet from (one NAT gateway per zone)",
    });
    output.overrideLogicalId('egress_addresses');
  }

  /** A route table of a tier (tagged with it, so a peer finds the private ones) whose default route leaves through `target`. */
  private routeTable(
    props: AwsNetworkProps,
    tier: 'public' | 'private',
    id: string,
    target: { readonly gatewayId: string } | { readonly natGatewayId: string },
    zone?: string,
    suffix = '',
  ): RouteTable {
    const routes = new RouteTable(this, id, {
      vpcId: this.vpcId,
      tags: { Name: `${props.name}-${tier}${zone ? `-${zone}` : ''}`, 'meshform:tier': tier },
    });
    new Route(this, `${tier === 'public' ? 'Public' : 'Private'}DefaultRoute${suffix}`, {
      routeTableId: routes.id,
      destinationCidrBlock: '0.0.0.0/0',
      ...target,
    });
    return routes;
  }

  /** Subnet `i` of a tier, from the block's slice `firstSlice + i` (public from 0, private from 8). */
  private subnet(
    props: AwsNetworkProps,
    tier: 'public' | 'private',
    zone: string,
    i: number,
    extraTags: { readonly [key: string]: string } | undefined,
  ): Subnet {
    return new Subnet(this, `${tier === 'public' ? 'Public' : 'Private'}${i}`, {
      vpcId: this.vpcId,
      availabilityZone: zone,
      cidrBlock: formatCidr(cidrSubnet(props.cidr, 4, (tier === 'public' ? 0 : 8) + i)),
      mapPublicIpOnLaunch: false,
      tags: { Name: `${props.name}-${tier}-${zone}`, 'meshform:tier': tier, ...extraTags },
    });
  }
}
