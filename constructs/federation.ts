import { Construct } from 'constructs';
import type { Datacenter } from './datacenter';
import { errors } from './errors';
import type { Mesh } from './mesh';
import type { FederationLogin } from './private/federation-reach';

/** One WAN federation link: a secondary datacenter joining the primary through mesh gateways. */
export interface FederationLink {
  /** The secondary datacenter. */
  readonly from: string;
  /** The primary datacenter. */
  readonly to: string;
  /** How the link is made. */
  readonly via: 'mesh-gateways';
  /** Addresses of the primary's gateways the secondary dials first (`primary_gateways`). */
  readonly primaryGateways: readonly string[];
  /**
   * Kubernetes secondaries: how the primary's servers reach the secondary's API server, which they call for
   * every login through the secondary's ACL auth method.
   */
  readonly login?: FederationLogin;
}

/**
 * WAN federation of a mesh's datacenters through mesh gateways.
 *
 * Every datacenter joins the primary: its servers dial the primary's gateways (declared in the topology, so
 * no datacenter needs another's Terraform state), learn every other datacenter's gateways from the primary's
 * federation state, and from then on all server RPC and service traffic between datacenters goes through
 * mesh gateways; there is no WAN gossip join. The shared server CA, gossip key and ACL token come from
 * meshform's secret store, so there is no federation secret to copy by hand.
 *
 * Created by the Mesh; read it as `mesh.federation`.
 */
export class Federation extends Construct {
  private readonly mesh: Mesh;

  constructor(mesh: Mesh, id: string) {
    super(mesh, id);
    this.mesh = mesh;
  }

  /** The primary's gateway endpoints (`host:port`), empty when the primary declares no address. */
  public get primaryGateways(): string[] {
    const endpoint = this.mesh.primary.meshGateway.wanEndpoint;
    return endpoint ? [endpoint] : [];
  }

  /** Every link, one per secondary, in declaration order. */
  public get links(): FederationLink[] {
    const primary = this.mesh.primary;
    return this.mesh.datacenters
      .filter((dc) => dc !== primary)
      .map((dc) => {
        const login = dc.federationLogin();
        return {
          from: dc.name,
          to: primary.name,
          via: 'mesh-gateways' as const,
          primaryGateways: this.primaryGateways,
          ...(login ? { login } : {}),
        };
      });
  }

  /** The datacenters other than the primary. */
  public get secondaries(): Datacenter[] {
    return this.mesh.datacenters.filter((dc) => !dc.isPrimary);
  }

  /** Throws when a secondary could not reach the primary without the primary's state. */
  public validate(): void {
    const primary = this.mesh.primary;
    const secondaries = this.secondaries;
    if (secondaries.length > 0 && primary.meshGateway.address === undefined) {
      throw errors.missingPrimaryGatewayAddress(
        primary.meshGateway.node.path,
        primary.name,
        secondaries.map((dc) => dc.name),
      );
    }
  }
}
