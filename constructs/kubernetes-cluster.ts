import { errors } from './errors';
import { parseCidr } from './private/cidr';
import { checkAvailabilityZones, checkInstanceType } from './private/aws-input';
import { isHttpsUrl, isNonEmptyString, isWholeNumber } from './private/validation';

/** Options of an existing cluster reached through a kubeconfig. */
export interface KubeconfigClusterOptions {
  /** The kubeconfig context that reaches the cluster (any cloud: EKS, GKE, AKS, on-premises...). */
  readonly context: string;
  /**
   * Path of the kubeconfig file on the machine that deploys (kept as written, so `~` works everywhere).
   * @default "~/.kube/config"
   */
  readonly path?: string;
  /**
   * URL of the cluster's Kubernetes API server as the primary datacenter's Consul servers reach it; the
   * chart's `global.federation.k8sAuthMethodHost`, needed by secondaries because ACLs are always on.
   * @default - none; required when the datacenter is a secondary
   */
  readonly apiServerUrl?: string;
  /**
   * You confirm that the API server admits the primary datacenter's Consul servers (its allow-list holds the
   * addresses they leave their network from, or it has none). meshform cannot check an allow-list it does not
   * manage: until you confirm, `meshform check` reports the primary's logins to this datacenter as unproven.
   * @default false
   */
  readonly apiServerAdmitsPrimary?: boolean;
}

/** Options of an EKS cluster that meshform creates (VPC, cluster, node group) in the datacenter's infra stack. */
export interface EksClusterOptions {
  /** AWS region of the cluster. */
  readonly region: string;
  /** CIDR of the cluster's new VPC (e.g. "10.10.0.0/16"); split into a public and a private subnet per zone. */
  readonly vpcCidr: string;
  /**
   * Availability zones, one public and one private subnet each.
   * @default - the region's zones a, b and c
   */
  readonly availabilityZones?: readonly string[];
  /**
   * Kubernetes version of the control plane.
   * @default "1.33"
   */
  readonly kubernetesVersion?: string;
  /**
   * Instance type of the worker nodes.
   * @default "m6i.large"
   */
  readonly nodeInstanceType?: string;
  /**
   * Number of worker nodes; at least the number of Consul servers, which run on distinct nodes.
   * @default 3
   */
  readonly nodes?: number;
  /**
   * CIDRs allowed to reach the cluster's public API endpoint (the machine that deploys). On a secondary, meshform
   * adds the primary's NAT addresses when it creates the primary's network (an EKS cluster or a new VPC of VM
   * hosts); a secondary's endpoint cannot be private (the primary's servers call it to log components in).
   * @default - none: the API endpoint is private to the VPC
   */
  readonly apiPublicAccessCidrs?: readonly string[];
  /**
   * A secondary only, when the primary's network is not one meshform creates (so meshform cannot add its NAT
   * addresses to `apiPublicAccessCidrs` itself): you confirm that `apiPublicAccessCidrs` admits the primary's
   * Consul servers. Until you do, `meshform check` reports the primary's logins to this datacenter as unproven.
   * @default false
   */
  readonly apiServerAdmitsPrimary?: boolean;
  /**
   * Route 53 hosted zone in which meshform publishes the mesh gateway's declared address, pointing at the
   * Elastic IPs of the gateway's network load balancer.
   * @default - none: publish the address yourself (the Elastic IPs are the stack's outputs)
   */
  readonly hostedZoneId?: string;
}

/** Where a Kubernetes datacenter's cluster comes from. Choose with `KubernetesCluster.fromKubeconfig()` or `.eks()`. */
export abstract class KubernetesCluster {
  /** An existing cluster on any cloud, reached by kubeconfig path and context. */
  public static fromKubeconfig(options: KubeconfigClusterOptions): KubeconfigCluster {
    return new KubeconfigCluster(options);
  }

  /** A new EKS cluster created by meshform in an AWS infra stack the datacenter's Consul stack depends on. */
  public static eks(options: EksClusterOptions): EksCluster {
    return new EksCluster(options);
  }

  /** A short description, e.g. `EKS 1.33 in us-east-1 (created by meshform)`. */
  public abstract describe(): string;

  /** Checks the options; throws a MeshformError naming `constructPath`. */
  public abstract validate(constructPath: string): void;
}

/** An existing cluster reached by kubeconfig. */
export class KubeconfigCluster extends KubernetesCluster {
  /** kubeconfig path. */
  public readonly path: string;
  /** kubeconfig context. */
  public readonly context: string;
  /** API server URL for the ACL auth method. */
  public readonly apiServerUrl?: string;
  /** Whether you confirmed that the API server admits the primary's Consul servers. */
  public readonly apiServerAdmitsPrimary: boolean;

  constructor(options: KubeconfigClusterOptions) {
    super();
    const o = options ?? ({} as KubeconfigClusterOptions);
    this.path = o.path ?? '~/.kube/config';
    this.context = o.context;
    this.apiServerUrl = o.apiServerUrl;
    this.apiServerAdmitsPrimary = o.apiServerAdmitsPrimary ?? false;
  }

  public describe(): string {
    return `existing cluster, kubeconfig context ${this.context}`;
  }

  public validate(constructPath: string): void {
    if (!isNonEmptyString(this.path)) throw errors.emptyValue(constructPath, 'kubeconfig path');
    if (!isNonEmptyString(this.context)) throw errors.emptyValue(constructPath, 'kubeconfig context');
    if (typeof this.apiServerAdmitsPrimary !== 'boolean')
      throw errors.invalidValue(
        constructPath,
        'apiServerAdmitsPrimary',
        this.apiServerAdmitsPrimary,
        'use true or false',
      );
    if (this.apiServerUrl !== undefined && !isHttpsUrl(this.apiServerUrl)) {
      throw errors.invalidUrl(constructPath, 'apiServerUrl', this.apiServerUrl);
    }
  }
}

/** An EKS cluster created by meshform. */
export class EksCluster extends KubernetesCluster {
  /** The options as given. */
  public readonly options: EksClusterOptions;
  /** Availability zones. */
  public readonly availabilityZones: readonly string[];
  /** Kubernetes version. */
  public readonly kubernetesVersion: string;
  /** Worker instance type. */
  public readonly nodeInstanceType: string;
  /** Worker count. */
  public readonly nodes: number;

  constructor(options: EksClusterOptions) {
    super();
    this.options = options ?? ({} as EksClusterOptions);
    this.availabilityZones = this.options.availabilityZones ?? ['a', 'b', 'c'].map((z) => `${this.options.region}${z}`);
    this.kubernetesVersion = this.options.kubernetesVersion ?? '1.33';
    this.nodeInstanceType = this.options.nodeInstanceType ?? 'm6i.large';
    this.nodes = this.options.nodes ?? 3;
  }

  public describe(): string {
    return `EKS ${this.kubernetesVersion} in ${this.options.region}, ${this.nodes} × ${this.nodeInstanceType} (created by meshform)`;
  }

  public validate(constructPath: string): void {
    const o = this.options;
    if (typeof o.region !== 'string' || !/^[a-z]{2}(-[a-z]+)+-\d$/.test(o.region)) {
      throw errors.invalidRegion(constructPath, o.region);
    }
    if (typeof this.kubernetesVersion !== 'string' || !/^1\.\d+$/.test(this.kubernetesVersion)) {
      throw errors.invalidKubernetesVersion(constructPath, this.kubernetesVersion);
    }
    // EKS places a cluster's control plane in subnets of at least two zones (CreateCluster refuses fewer)
    checkAvailabilityZones(constructPath, o.region, this.availabilityZones, 2);
    checkInstanceType(constructPath, 'nodeInstanceType', this.nodeInstanceType);
    if (!isWholeNumber(this.nodes, 1, 450)) throw errors.numberOutOfRange(constructPath, 'nodes', this.nodes, 1, 450);
    if (o.apiPublicAccessCidrs !== undefined && !Array.isArray(o.apiPublicAccessCidrs))
      throw errors.missingValue(
        constructPath,
        'apiPublicAccessCidrs',
        o.apiPublicAccessCidrs,
        'give a list of CIDR blocks',
      );
    for (const cidr of o.apiPublicAccessCidrs ?? []) {
      const parsed = parseCidr(cidr);
      if (!parsed.ok) {
        if (parsed.reason === 'host-bits')
          throw errors.cidrHostBits(constructPath, 'apiPublicAccessCidrs entry', cidr, parsed.canonical!);
        throw errors.malformedCidr(constructPath, 'apiPublicAccessCidrs entry', cidr);
      }
    }
    if (o.apiServerAdmitsPrimary !== undefined && typeof o.apiServerAdmitsPrimary !== 'boolean')
      throw errors.invalidValue(constructPath, 'apiServerAdmitsPrimary', o.apiServerAdmitsPrimary, 'use true or false');
    if (
      o.hostedZoneId !== undefined &&
      (typeof o.hostedZoneId !== 'string' || !/^Z[A-Z0-9]{1,31}$/.test(o.hostedZoneId))
    )
      throw errors.invalidAwsId(constructPath, 'hostedZoneId', o.hostedZoneId, 'Z0123456789ABCDEFGHIJ');
  }
}
