import { Construct } from 'constructs';
import type { Datacenter } from './datacenter';
import { errors } from './errors';
import { Mesh } from './mesh';
import { isDatacenterName, isPort } from './private/validation';

/** The protocol a service speaks; L7 features (routes, splits, L7 intentions) need an HTTP-family protocol. */
export enum ServiceProtocol {
  TCP = 'tcp',
  HTTP = 'http',
  HTTP2 = 'http2',
  GRPC = 'grpc',
}

/** Props of a Service. */
export interface ServiceProps {
  /**
   * Consul service name (an RFC 1123 label).
   * @default - the construct id
   */
  readonly name?: string;
  /** Port the service listens on, on each of its hosts or pods. */
  readonly port: number;
  /**
   * Protocol the service speaks.
   * @default ServiceProtocol.TCP
   */
  readonly protocol?: ServiceProtocol;
  /**
   * Datacenters the service runs in (more with `runsIn`).
   * @default - none yet
   */
  readonly datacenters?: readonly Datacenter[];
}

/** A service as data (mesh manifest, plans). */
export interface ServiceDescription {
  readonly name: string;
  readonly port: number;
  readonly protocol: ServiceProtocol;
  /** Datacenters it runs in. */
  readonly datacenters: readonly string[];
  /** Datacenters its traffic fails over to, in order, when none of its instances is healthy. */
  readonly failover?: readonly string[];
}

/**
 * A service of the mesh, with an Envoy sidecar wherever it runs. On VM datacenters meshform registers it and
 * runs its sidecar on the hosts that carry it; on Kubernetes the connect injector does (annotate the pods).
 */
export class Service extends Construct {
  /** Consul service name. */
  public readonly name: string;
  /** Listening port. */
  public readonly port: number;
  /** Protocol. */
  public readonly protocol: ServiceProtocol;
  /** The mesh. */
  public readonly mesh: Mesh;
  private readonly dcs: Datacenter[] = [];

  constructor(scope: Mesh, id: string, props: ServiceProps) {
    super(scope, id);
    this.mesh = Mesh.of(this);
    const path = this.node.path;
    this.name = props.name ?? id;
    if (!isDatacenterName(this.name)) throw errors.invalidServiceName(path, this.name);
    if (props.port === undefined || props.port === null || !isPort(props.port))
      throw errors.invalidServicePort(path, this.name, props.port);
    this.port = props.port;
    this.protocol = props.protocol ?? ServiceProtocol.TCP;
    this.mesh._addService(this);
    for (const dc of props.datacenters ?? []) this.runsIn(dc);
  }

  /** Declares that the service runs in `datacenter`. */
  public runsIn(datacenter: Datacenter): this {
    if (!this.dcs.includes(datacenter)) this.dcs.push(datacenter);
    return this;
  }

  /** The service as data. */
  public describe(): ServiceDescription {
    return { name: this.name, port: this.port, protocol: this.protocol, datacenters: this.dcs.map((dc) => dc.name) };
  }

  /** The datacenters the service runs in, in declaration order. */
  public get datacenters(): readonly Datacenter[] {
    return [...this.dcs];
  }
}
