/*
 * The constructs' side of federation reach: where a datacenter's servers leave their network (from its cluster or
 * hosts) and whether the primary's servers reach a secondary's Kubernetes API. Stacks never import this file.
 */
import type { Datacenter } from '../datacenter';
import { EksCluster, KubeconfigCluster, KubernetesCluster } from '../kubernetes-cluster';
import { AwsVmHosts, NewVpc } from '../vm-hosts';
import { EGRESS_NAT, EGRESS_TAG, MeshformEgress } from './egress';
import type { TerraformStack } from './engine';

/**
 * Where a datacenter's servers reach the internet from, when meshform creates that network: the VPC of an EKS
 * cluster meshform creates, or the new VPC of AWS VM hosts (servers in private subnets, behind NAT). Undefined
 * for any network meshform does not create (an existing cluster or VPC, your own hosts).
 */
export function meshformEgress(dc: Datacenter): MeshformEgress | undefined {
  const candidate = dc as Datacenter & {
    readonly cluster?: unknown;
    readonly infraStack?: TerraformStack;
    readonly hosts?: unknown;
  };
  if (candidate.cluster instanceof EksCluster && candidate.infraStack) {
    return { datacenter: dc.name, region: candidate.cluster.options.region, stack: candidate.infraStack };
  }
  if (candidate.hosts instanceof AwsVmHosts && candidate.hosts.options.network instanceof NewVpc) {
    return { datacenter: dc.name, region: candidate.hosts.options.region, stack: dc.controlPlaneStack };
  }
  return undefined;
}

/** Whether the primary's servers can reach a secondary's Kubernetes API (its ACL auth method host). */
export type LoginReach = 'meshform' | 'open' | 'declared' | 'unproven';

/**
 * The edge from the primary's Consul servers to a Kubernetes secondary's API server: every login of the
 * secondary's components goes through an auth method whose host the primary's servers call
 * (`global.federation.k8sAuthMethodHost`).
 */
export interface FederationLogin {
  /** The API server as the primary's servers dial it. */
  readonly apiServer: string;
  readonly reach: LoginReach;
  /** What holds. */
  readonly note: string;
  /** How to prove it, when meshform cannot. */
  readonly fix?: string;
}

/** Options of a cluster that tell how its API allow-list treats the primary (both kinds of cluster). */
function admitsPrimary(cluster: KubernetesCluster): boolean {
  if (cluster instanceof KubeconfigCluster) return cluster.apiServerAdmitsPrimary;
  if (cluster instanceof EksCluster) return cluster.options.apiServerAdmitsPrimary ?? false;
  return false;
}

/** How the primary's servers reach the API server of `cluster`, a secondary's (see FederationLogin). */
export function federationLogin(
  cluster: KubernetesCluster,
  apiServer: string,
  primary: string,
  egress: MeshformEgress | undefined,
  declareWith: string,
): FederationLogin {
  const from = egress
    ? `the Elastic IPs tagged ${EGRESS_TAG}=${EGRESS_NAT} of ${primary} in ${egress.region}`
    : `the addresses ${primary}'s Consul servers leave their network from`;
  if (cluster instanceof EksCluster) {
    const cidrs = cluster.options.apiPublicAccessCidrs ?? [];
    if (egress) {
      return {
        apiServer,
        reach: 'meshform',
        note: `meshform adds ${primary}'s NAT addresses (${from}) to the API allow-list it manages`,
      };
    }
    if (cidrs.includes('0.0.0.0/0')) {
      return { apiServer, reach: 'open', note: 'the API allow-list admits any address (0.0.0.0/0)' };
    }
  }
  if (admitsPrimary(cluster)) {
    return {
      apiServer,
      reach: 'declared',
      note: `declared: the API server admits ${primary}'s Consul servers (meshform cannot check this allow-list)`,
    };
  }
  const managed =
    cluster instanceof EksCluster
      ? `meshform manages this API allow-list but does not know ${from}`
      : `meshform does not manage the allow-list of ${apiServer}`;
  return {
    apiServer,
    reach: 'unproven',
    note: `${managed}: the primary's logins to this datacenter's auth method are not proven`,
    fix: `admit ${from} in the API server's allow-list${
      cluster instanceof EksCluster ? ' (apiPublicAccessCidrs)' : ''
    }, then declare it with ${declareWith}`,
  };
}
