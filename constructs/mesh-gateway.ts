import { Construct } from 'constructs';
import { errors } from './errors';
import { checkedProps, checkEnum } from './private/guards';
import { isDnsName, isIpAddress, isPort, isQualifiedName } from './private/validation';

/** How a Kubernetes mesh gateway is exposed. */
export enum MeshGatewayServiceType {
  /** A cloud load balancer in front of the gateway pods. */
  LOAD_BALANCER = 'LoadBalancer',
  /** A fixed port on every node (for clusters behind your own load balancer). */
  NODE_PORT = 'NodePort',
}

/** Options of a datacenter's mesh gateway. */
export interface MeshGatewayOptions {
  /**
   * The stable address other datacenters dial: a DNS name or a reserved IP (no scheme, no port).
   * Required on the primary of a multi-datacenter mesh, because secondaries are planned without reading the
   * primary's state; point it at the gateway with a DNS record or a reserved load balancer IP.
   * @default - the address Kubernetes assigns to the gateway's Service (allowed on secondaries only)
   */
  readonly address?: string;
  /**
   * Port the gateway listens on for other datacenters.
   * @default 443
   */
  readonly port?: number;
  /**
   * How the gateway's Kubernetes Service is exposed.
   * @default MeshGatewayServiceType.LOAD_BALANCER
   */
  readonly serviceType?: MeshGatewayServiceType;
  /**
   * Annotations of the gateway's Kubernetes Service, e.g. to request an internal/network load balancer or a
   * reserved IP from the cloud.
   * @default - none
   */
  readonly serviceAnnotations?: { readonly [key: string]: string };
  /**
   * Node port of a NodePort gateway (30000-32767); other datacenters dial `address:nodePort`.
   * @default - none; required when serviceType is NODE_PORT
   */
  readonly nodePort?: number;
  /**
   * Number of gateway instances.
   * @default 2
   */
  readonly replicas?: number;
}

/**
 * The mesh gateway of one datacenter: the only way traffic and WAN federation cross datacenters.
 * Created by every datacenter; read it as `datacenter.meshGateway`.
 */
export class MeshGateway extends Construct {
  /** Declared stable address, if any. */
  public readonly address?: string;
  /** Port of the Service. */
  public readonly port: number;
  /** Service type. */
  public readonly serviceType: MeshGatewayServiceType;
  /** Service annotations, sorted by key. */
  public readonly serviceAnnotations: { readonly [key: string]: string };
  /** Node port for NodePort gateways. */
  public readonly nodePort?: number;
  /** Number of gateway instances. */
  public readonly replicas: number;

  constructor(scope: Construct, id: string, options: MeshGatewayOptions = {}) {
    super(scope, id);
    const path = this.node.path;
    options = checkedProps(
      path,
      'meshGateway',
      options,
      'pass an object of MeshGatewayOptions, e.g. `{ address: "mgw.example.com" }`',
    );
    checkEnum(
      path,
      'meshGateway.serviceType',
      options.serviceType,
      MeshGatewayServiceType,
      'MeshGatewayServiceType.LOAD_BALANCER or NODE_PORT',
    );
    this.port = options.port ?? 443;
    this.serviceType = options.serviceType ?? MeshGatewayServiceType.LOAD_BALANCER;
    this.replicas = options.replicas ?? 2;
    if (options.address !== undefined) {
      if (!isDnsName(options.address) && !isIpAddress(options.address)) {
        throw errors.invalidGatewayAddress(path, options.address);
      }
      this.address = options.address;
    }
    if (!isPort(this.port)) throw errors.invalidPort(path, 'mesh gateway port', this.port);
    if (
      typeof this.replicas !== 'number' ||
      !Number.isInteger(this.replicas) ||
      this.replicas < 1 ||
      this.replicas > 100
    ) {
      throw errors.invalidReplicas(path, 'mesh gateway replicas', this.replicas);
    }
    if (this.serviceType === MeshGatewayServiceType.NODE_PORT) {
      const np = options.nodePort;
      if (typeof np !== 'number' || !Number.isInteger(np) || np < 30000 || np > 32767) {
        throw errors.invalidNodePort(path, np);
      }
      this.nodePort = np;
    }
    const annotations = checkedProps(
      path,
      'meshGateway.serviceAnnotations',
      options.serviceAnnotations,
      'pass an object of annotation keys and string values',
    );
    for (const [key, value] of Object.entries(annotations)) {
      if (!isQualifiedName(key)) throw errors.invalidAnnotationKey(path, key);
      if (typeof value !== 'string')
        throw errors.invalidValue(
          path,
          `meshGateway.serviceAnnotations["${key}"]`,
          value,
          'give every annotation a string value',
        );
    }
    this.serviceAnnotations = Object.fromEntries(
      Object.keys(annotations)
        .sort()
        .map((k) => [k, annotations[k]!]),
    );
  }

  /** The port other datacenters dial: the node port of a NodePort gateway, else `port`. */
  public get wanPort(): number {
    return this.nodePort ?? this.port;
  }

  /** `<address>:<port>` as other datacenters dial it, when the address is declared. */
  public get wanEndpoint(): string | undefined {
    if (this.address === undefined) return undefined;
    const host = isIpAddress(this.address) && this.address.includes(':') ? `[${this.address}]` : this.address;
    return `${host}:${this.wanPort}`;
  }
}
