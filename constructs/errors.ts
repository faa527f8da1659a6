/**
 * Every error and warning meshform raises, in one place.
 *
 * An error names the construct path, the value that was rejected and how to fix it:
 *
 *     [shop/aws-east] datacenter name is not both a Consul datacenter name and an RFC 1123 label: "AWS_East".
 *     Fix: use 1 to 63 lowercase letters, digits and hyphens, starting and ending with a letter or digit (e.g. "aws-east").
 *
 * A warning carries a stable id (`meshform/<slug>`) that tools and CI can match on.
 */

/** An error raised while synthesizing a mesh: the topology is invalid and nothing is written. */
export class MeshformError extends Error {
  /** Stable machine-readable code, e.g. `duplicate-datacenter`. */
  public readonly code: string;
  /** Path of the construct the error is about. */
  public readonly constructPath: string;
  /** The value that was rejected. */
  public readonly value: unknown;
  /** How to fix it. */
  public readonly fix: string;

  constructor(code: string, constructPath: string, problem: string, value: unknown, fix: string) {
    super(`[${constructPath}] ${problem}: ${show(value)}. Fix: ${fix}`);
    this.name = 'MeshformError';
    this.code = code;
    this.constructPath = constructPath;
    this.value = value;
    this.fix = fix;
  }
}

/** A warning with a stable id. */
export interface MeshformWarning {
  /** Stable id, `meshform/<slug>`. */
  readonly id: string;
  /** The full message, starting with the id in brackets. */
  readonly message: string;
}

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return '(not set)';
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  if (typeof value === 'function') return '(a function)';
  if (typeof value === 'symbol') return value.toString();
  try {
    // numbers JSON cannot write (NaN, Infinity) and undefined list items are shown as they are, not as null
    const text = JSON.stringify(value, (_key, v: unknown) =>
      typeof v === 'number' && !Number.isFinite(v) ? `<${v}>` : v === undefined ? '<not set>' : v,
    );
    return text === undefined ? String(value) : text.replace(/"<(NaN|-?Infinity|not set)>"/g, '$1');
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** What a value is, for an error about a value of the wrong kind. */
export function describeKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name;
    return name && name !== 'Object' ? `a ${name}` : 'an object';
  }
  return typeof value === 'undefined' ? 'nothing' : `a ${typeof value}`;
}

function list(values: readonly string[]): string {
  return values.map((v) => JSON.stringify(v)).join(', ');
}

const NAME_RULE = 'use 1 to 63 lowercase letters, digits and hyphens, starting and ending with a letter or digit';

/** Factories for every error meshform throws. */
export const errors = {
  invalidName(path: string, what: string, name: unknown, example: string): MeshformError {
    return new MeshformError(
      'invalid-name',
      path,
      `${what} is not both a Consul datacenter name and an RFC 1123 label`,
      name,
      `${NAME_RULE} (e.g. "${example}")`,
    );
  },

  invalidKubernetesName(path: string, what: string, name: unknown): MeshformError {
    return new MeshformError(
      'invalid-kubernetes-name',
      path,
      `${what} is not an RFC 1123 label`,
      name,
      `${NAME_RULE}${what.startsWith('Helm') ? ' (at most 53 for a Helm release)' : ''}`,
    );
  },

  invalidDomain(path: string, domain: unknown): MeshformError {
    return new MeshformError(
      'invalid-domain',
      path,
      'Consul domain is not a valid DNS name',
      domain,
      'use dot-separated RFC 1123 labels without a trailing dot (e.g. "consul" or "mesh.example.internal")',
    );
  },

  duplicateDatacenter(path: string, name: string, existingPath: string): MeshformError {
    return new MeshformError(
      'duplicate-datacenter',
      path,
      `datacenter name is already used by ${existingPath}`,
      name,
      'give every datacenter of a mesh its own name',
    );
  },

  duplicateStackName(path: string, stackName: string): MeshformError {
    return new MeshformError(
      'duplicate-stack',
      path,
      'another stack of this app already has the name this datacenter needs',
      stackName,
      'rename the mesh or the datacenter so that "<mesh>-<datacenter>" is unique in the app',
    );
  },

  declaredAfterSynthesis(path: string, mesh: string): MeshformError {
    return new MeshformError(
      'declared-after-synthesis',
      path,
      'declared after the mesh was synthesized (app.synth() validated it and wrote its stacks)',
      mesh,
      'declare every datacenter, service and relation of the mesh before app.synth()',
    );
  },

  outdirMismatch(path: string, appOutdir: string, configured: string): MeshformError {
    return new MeshformError(
      'outdir-mismatch',
      path,
      `the app's own output directory (new App({ outdir })) is not the one cdktf.json names ("output": ${JSON.stringify(configured)}), where meshform and cdktf read the output`,
      appOutdir,
      `set "output": ${JSON.stringify(appOutdir)} in cdktf.json, or leave outdir out of new App() to take cdktf.json's`,
    );
  },

  noPrimary(path: string, datacenters: readonly string[]): MeshformError {
    return new MeshformError(
      'no-primary',
      path,
      'no datacenter is primary; exactly one must be',
      datacenters,
      'set `primary: true` on exactly one datacenter',
    );
  },

  multiplePrimaries(path: string, primaries: readonly string[]): MeshformError {
    return new MeshformError(
      'multiple-primaries',
      path,
      `${primaries.length} datacenters are primary (${list(primaries)}); exactly one must be`,
      primaries,
      'keep `primary: true` on one datacenter and remove it from the others',
    );
  },

  unknownPrimary(path: string, primary: string, names: readonly string[]): MeshformError {
    return new MeshformError(
      'unknown-primary',
      path,
      'the primary names no cluster of the mesh',
      primary,
      `name one of ${list(names)}`,
    );
  },

  emptyMesh(path: string): MeshformError {
    return new MeshformError(
      'empty-mesh',
      path,
      'the mesh has no datacenter',
      [],
      'add at least one datacenter, e.g. `new KubernetesDatacenter(mesh, "dc1", { primary: true, ... })`',
    );
  },

  invalidServerCount(path: string, servers: unknown, allowed: readonly number[]): MeshformError {
    return new MeshformError(
      'invalid-server-count',
      path,
      `Consul server count must be one of ${allowed.join(', ')}`,
      servers,
      allowed.includes(1)
        ? 'use 3 (tolerates one failure) or 5 (tolerates two); 1 only for a throwaway datacenter'
        : `use ${allowed.join(' or ')} servers`,
    );
  },

  missingPrimaryGatewayAddress(path: string, datacenter: string, others: readonly string[]): MeshformError {
    return new MeshformError(
      'missing-primary-gateway-address',
      path,
      `the primary datacenter "${datacenter}" has no declared mesh gateway address, ` +
        `so ${list(others)} cannot reach it without reading its Terraform state`,
      undefined,
      'set `meshGateway: { address: "<stable DNS name or reserved IP>" }` on the primary ' +
        '(for example a DNS record or a reserved load balancer IP for its mesh gateway)',
    );
  },

  invalidGatewayAddress(path: string, address: unknown): MeshformError {
    return new MeshformError(
      'invalid-gateway-address',
      path,
      'mesh gateway address is not a DNS name or an IP address',
      address,
      'give a host name (e.g. "mgw.dc1.example.com") or an IP address, without a scheme or port (use `port` for the port)',
    );
  },

  invalidPort(path: string, what: string, port: unknown): MeshformError {
    return new MeshformError(
      'invalid-port',
      path,
      `${what} is not a TCP port`,
      port,
      'use a whole number from 1 to 65535',
    );
  },

  invalidNodePort(path: string, port: unknown): MeshformError {
    return new MeshformError(
      'invalid-node-port',
      path,
      'a NodePort mesh gateway needs a fixed node port in the Kubernetes NodePort range',
      port,
      'set `meshGateway.nodePort` to a port from 30000 to 32767',
    );
  },

  invalidReplicas(path: string, what: string, replicas: unknown): MeshformError {
    return new MeshformError(
      'invalid-replicas',
      path,
      `${what} must be a whole number from 1 to 100`,
      replicas,
      'use 1 to 100 (2 or more for high availability)',
    );
  },

  unknownChartVersion(path: string, version: string, known: readonly string[]): MeshformError {
    return new MeshformError(
      'unknown-chart-version',
      path,
      'consul-k8s Helm chart version is not one meshform has been checked against',
      version,
      `use one of ${list(known)}`,
    );
  },

  unknownConsulVersion(path: string, version: string, chart: string, known: readonly string[]): MeshformError {
    return new MeshformError(
      'unknown-consul-version',
      path,
      `Consul version is not known to work with consul-k8s chart ${chart}`,
      version,
      `use one of ${list(known)} or pick the chart version that supports it`,
    );
  },

  missingKubernetesApiUrl(path: string, datacenter: string): MeshformError {
    return new MeshformError(
      'missing-kubernetes-api-url',
      path,
      `secondary datacenter "${datacenter}" needs the URL of its Kubernetes API server for the ACL auth method the primary's servers call`,
      undefined,
      'set `apiServerUrl` in `KubernetesCluster.fromKubeconfig({ ... })` to the API server URL as reachable from the primary datacenter ' +
        '(`kubectl config view -o jsonpath="{.clusters[0].cluster.server}"`)',
    );
  },

  privateSecondaryApi(path: string, datacenter: string, primary: string): MeshformError {
    return new MeshformError(
      'private-secondary-api',
      path,
      `secondary datacenter "${datacenter}" keeps its EKS API endpoint private, but ${primary}'s Consul servers call it ` +
        'for every login through its ACL auth method (global.federation.k8sAuthMethodHost), from outside its VPC',
      [],
      'set `apiPublicAccessCidrs` in `KubernetesCluster.eks({ ... })` to the networks you deploy from; meshform adds the ' +
        `NAT addresses of ${primary} when it creates ${primary}'s network, else add them yourself and set apiServerAdmitsPrimary: true`,
    );
  },

  remoteExecutionKubeconfig(path: string, workspace: string, context: string): MeshformError {
    return new MeshformError(
      'remote-execution-kubeconfig',
      path,
      `the Terraform Cloud workspace "${workspace}" runs remotely (execution mode "remote"), where the kubeconfig ` +
        'context this datacenter reaches its cluster through does not exist',
      context,
      'run the workspace locally: `StateBackend.terraformCloud({ ..., executionMode: TerraformCloudExecutionMode.LOCAL })` ' +
        "and set the workspace's execution mode to Local in Terraform Cloud; or run it on your own agent that holds " +
        'this kubeconfig and the credentials it uses (`executionMode: TerraformCloudExecutionMode.AGENT`)',
    );
  },

  invalidUrl(path: string, what: string, url: unknown): MeshformError {
    return new MeshformError(
      'invalid-url',
      path,
      `${what} is not an https:// URL`,
      url,
      'give an absolute https:// URL, e.g. "https://203.0.113.10:6443"',
    );
  },

  emptyValue(path: string, what: string): MeshformError {
    return new MeshformError('empty-value', path, `${what} must not be empty`, '', `set ${what}`);
  },

  meshInsideStack(path: string): MeshformError {
    return new MeshformError(
      'mesh-inside-stack',
      path,
      'a Mesh must not be created inside a TerraformStack: meshform creates one stack per datacenter itself',
      path,
      'create the Mesh directly under the App: `new Mesh(app, "shop", { ... })`',
    );
  },

  notInMesh(path: string): MeshformError {
    return new MeshformError(
      'not-in-mesh',
      path,
      'a datacenter must be created inside a Mesh',
      path,
      'pass the mesh as scope: `new KubernetesDatacenter(mesh, "dc1", { ... })`',
    );
  },

  invalidRegion(path: string, region: unknown): MeshformError {
    return new MeshformError(
      'invalid-region',
      path,
      'AWS region is not valid',
      region,
      'give an AWS region such as "us-east-1"',
    );
  },

  invalidKubernetesVersion(path: string, version: unknown): MeshformError {
    return new MeshformError(
      'invalid-kubernetes-version',
      path,
      'Kubernetes version is not a minor version',
      version,
      'give a version such as "1.33"',
    );
  },

  malformedCidr(path: string, what: string, cidr: unknown): MeshformError {
    return new MeshformError(
      'malformed-cidr',
      path,
      `${what} is not an IPv4 CIDR block`,
      cidr,
      'write it as a.b.c.d/prefix, e.g. "10.20.0.0/16"',
    );
  },

  cidrHostBits(path: string, what: string, cidr: string, canonical: string): MeshformError {
    return new MeshformError(
      'cidr-host-bits',
      path,
      `${what} has host bits set`,
      cidr,
      `use the network address "${canonical}"`,
    );
  },

  cidrSize(path: string, what: string, cidr: string, min: number, max: number): MeshformError {
    return new MeshformError(
      'cidr-size',
      path,
      `${what} has a prefix outside /${min}-/${max}`,
      cidr,
      `use a block from /${min} to /${max}, so that every zone gets a public and a private subnet`,
    );
  },

  cidrOverlap(path: string, cidr: string, otherPath: string, otherCidr: string): MeshformError {
    return new MeshformError(
      'cidr-overlap',
      path,
      `VPC CIDR overlaps ${otherCidr} of the peered datacenter ${otherPath}`,
      cidr,
      'give peered datacenters disjoint VPC CIDRs (e.g. 10.20.0.0/16 and 10.30.0.0/16)',
    );
  },

  tooFewNodes(path: string, nodes: number, servers: number): MeshformError {
    return new MeshformError(
      'too-few-nodes',
      path,
      `the cluster has fewer worker nodes than Consul servers (${servers}), which run on distinct nodes`,
      nodes,
      `give the cluster at least ${servers} nodes`,
    );
  },

  invalidServiceName(path: string, name: unknown): MeshformError {
    return new MeshformError(
      'invalid-service-name',
      path,
      'service name is not an RFC 1123 label',
      name,
      `${NAME_RULE} (e.g. "api")`,
    );
  },

  invalidServicePort(path: string, service: string, port: unknown): MeshformError {
    return new MeshformError(
      'invalid-service-port',
      path,
      `service "${service}" has no valid port`,
      port,
      'set `port` to the port the service listens on (1 to 65535)',
    );
  },

  duplicateService(path: string, name: string, existingPath: string): MeshformError {
    return new MeshformError(
      'duplicate-service',
      path,
      `service name is already used by ${existingPath}`,
      name,
      'give every service of a mesh its own name',
    );
  },

  invalidValue(path: string, what: string, value: unknown, fix: string): MeshformError {
    return new MeshformError('invalid-value', path, `${what} is not valid`, value, fix);
  },

  duplicateSubset(path: string, service: string, subset: string): MeshformError {
    return new MeshformError(
      'duplicate-subset',
      path,
      `service "${service}" already has this subset`,
      subset,
      'give every subset its own name',
    );
  },

  l7OnTcp(path: string, service: string, protocol: string, feature: string): MeshformError {
    return new MeshformError(
      'l7-on-tcp',
      path,
      `service "${service}" speaks ${protocol}, so it cannot have ${feature}: they act on HTTP requests`,
      protocol,
      'set `protocol: ServiceProtocol.HTTP` (or HTTP2, GRPC) if the service speaks it, or drop the L7 setting',
    );
  },

  unknownSubset(path: string, service: string, subset: string, known: readonly string[]): MeshformError {
    return new MeshformError(
      'unknown-subset',
      path,
      `service "${service}" has no subset of this name`,
      subset,
      known.length
        ? `use one of ${list(known)}, or define it with addSubset({ name, filter })`
        : 'define it with addSubset({ name, filter })',
    );
  },

  invalidSplitWeight(path: string, service: string, weight: unknown): MeshformError {
    return new MeshformError(
      'invalid-split-weight',
      path,
      `a traffic split of "${service}" has a weight outside (0, 100]`,
      weight,
      'give each leg a weight above 0 and at most 100',
    );
  },

  splitWeightsSum(path: string, service: string, total: number): MeshformError {
    return new MeshformError(
      'split-weights-sum',
      path,
      `the traffic split of "${service}" does not add up to 100`,
      total,
      'make the weights of the legs sum to 100',
    );
  },

  failoverWhereNotRunning(path: string, service: string, datacenter: string, runsIn: readonly string[]): MeshformError {
    return new MeshformError(
      'failover-where-not-running',
      path,
      `service "${service}" does not run in datacenter "${datacenter}", so its traffic cannot go there`,
      datacenter,
      runsIn.length
        ? `use a datacenter it runs in (${list(runsIn)}), or add it with runsIn()`
        : `declare where "${service}" runs (datacenters or runsIn())`,
    );
  },

  unknownUpstream(path: string, service: string, other: string): MeshformError {
    return new MeshformError(
      'unknown-service',
      path,
      `service "${service}" refers to a service that is not declared in this mesh`,
      other,
      'declare it with new Service(mesh, ...) in the same mesh',
    );
  },

  upstreamToItself(path: string, service: string): MeshformError {
    return new MeshformError(
      'upstream-to-itself',
      path,
      'a service cannot be its own upstream',
      service,
      'remove the upstream',
    );
  },

  localBindPortTaken(path: string, service: string, port: number, first: string, second: string): MeshformError {
    return new MeshformError(
      'local-bind-port-taken',
      path,
      `upstreams "${first}" and "${second}" of "${service}" use the same local port`,
      port,
      'give each upstream its own localBindPort',
    );
  },

  intentionConflict(path: string, source: string, destination: string, actions: readonly string[]): MeshformError {
    return new MeshformError(
      'intention-conflict',
      path,
      `"${source}" → "${destination}" is declared more than once (${actions.join(' and ')}): Consul keeps one intention per pair`,
      source,
      'keep one allowFrom or denyFrom per pair; use L7 permissions to allow some requests and deny others',
    );
  },

  invalidPercent(path: string, what: string, value: unknown): MeshformError {
    return new MeshformError(
      'invalid-percent',
      path,
      `${what} must be a whole number from 0 to 100`,
      value,
      'use a percentage from 0 to 100',
    );
  },

  missingMachineImage(path: string): MeshformError {
    return new MeshformError(
      'missing-machine-image',
      path,
      'AWS hosts need a machine image and there is no default (AMI ids differ per region)',
      undefined,
      'set `machineImage: MachineImage.fromId("ami-...")` (a Debian 12 or similar AMI of your region) or `MachineImage.debian12()`',
    );
  },

  invalidInstanceType(path: string, what: string, value: unknown): MeshformError {
    return new MeshformError(
      'invalid-instance-type',
      path,
      `${what} is not an EC2 instance type`,
      value,
      'give a type such as "m6i.large"',
    );
  },

  invalidAmi(path: string, ami: unknown): MeshformError {
    return new MeshformError(
      'invalid-ami',
      path,
      'machine image id is not an AMI id',
      ami,
      'give an id such as "ami-0123456789abcdef0"',
    );
  },

  duplicateHost(path: string, what: string, value: string): MeshformError {
    return new MeshformError(
      'duplicate-host',
      path,
      `two hosts have the same ${what}`,
      value,
      `list every host once, each with its own ${what}`,
    );
  },

  invalidHostAddress(path: string, host: string, address: unknown): MeshformError {
    return new MeshformError(
      'invalid-host-address',
      path,
      `host "${host}" has no valid IP address`,
      address,
      "give the host's private IPv4 or IPv6 address",
    );
  },

  missingRole(path: string, role: string, fix: string): MeshformError {
    return new MeshformError('missing-role', path, `the datacenter has no ${role} host`, role, fix);
  },

  serverCountMismatch(path: string, servers: number, hosts: number): MeshformError {
    return new MeshformError(
      'server-count-mismatch',
      path,
      `\`servers\` says ${servers} but ${hosts} hosts have the server role`,
      servers,
      'list as many server hosts as `servers` says, or leave `servers` out',
    );
  },

  serviceNotPlaced(path: string, service: string, datacenter: string): MeshformError {
    return new MeshformError(
      'service-not-placed',
      path,
      `service "${service}" runs in datacenter "${datacenter}" but no host of it carries the service`,
      service,
      'add the service to the `services` of a client host',
    );
  },

  servicesOnNonClient(path: string, host: string, role: string): MeshformError {
    return new MeshformError(
      'services-on-non-client',
      path,
      `host "${host}" has the ${role} role and lists services`,
      host,
      'put services on client hosts only',
    );
  },

  invalidCount(path: string, what: string, value: unknown, min: number): MeshformError {
    return new MeshformError(
      'invalid-count',
      path,
      `${what} must be a whole number of at least ${min}`,
      value,
      `use ${min} or more`,
    );
  },

  unknownEnvoyVersion(path: string, version: string, arch: string, known: readonly string[]): MeshformError {
    return new MeshformError(
      'unknown-envoy-version',
      path,
      `meshform has no verified checksum of Envoy for linux/${arch} at this version`,
      version,
      known.length > 0
        ? `use one of ${list(known)}`
        : 'use x86_64 (amd64) instance types, or a binary mirror with your own verified build',
    );
  },

  internetFacingWithoutCidrs(path: string): MeshformError {
    return new MeshformError(
      'internet-facing-without-cidrs',
      path,
      'an internet-facing gateway load balancer needs the sources it admits',
      [],
      'set `allowedCidrs` (e.g. the other datacenters\' egress addresses, or ["0.0.0.0/0"] if you decide so)',
    );
  },

  elasticIpReplicas(path: string, replicas: number): MeshformError {
    return new MeshformError(
      'elastic-ip-replicas',
      path,
      'an Elastic IP gateway is one instance on one address',
      replicas,
      'set `meshGateway.replicas: 1`, or use GatewayExposure.networkLoadBalancer() for several gateways behind one address',
    );
  },

  noPublicSubnets(path: string): MeshformError {
    return new MeshformError(
      'no-public-subnets',
      path,
      'an internet-facing or Elastic IP gateway needs public subnets, and the existing VPC lists none',
      [],
      'set `publicSubnetIds` of VmNetwork.existingVpc({...})',
    );
  },

  extraConfigUnreadable(path: string, file: string, detail: string): MeshformError {
    return new MeshformError(
      'extra-config-unreadable',
      path,
      `extra agent config cannot be read (${detail})`,
      file,
      'give the path of a readable HCL file, relative to the project root',
    );
  },

  extraConfigInvalid(path: string, file: string, detail: string): MeshformError {
    return new MeshformError(
      'extra-config-invalid',
      path,
      `extra agent config is not valid HCL (${detail})`,
      file,
      'fix the HCL syntax (check it with `consul validate`)',
    );
  },

  extraConfigUnknownKeys(path: string, file: string, keys: readonly string[]): MeshformError {
    return new MeshformError(
      'extra-config-unknown-keys',
      path,
      `extra agent config ${file} sets keys Consul does not accept`,
      keys,
      "remove or rename them (see Consul's agent configuration reference)",
    );
  },

  extraConfigManagedKeys(path: string, file: string, keys: readonly string[]): MeshformError {
    return new MeshformError(
      'extra-config-managed-keys',
      path,
      `extra agent config ${file} sets keys meshform manages (security, federation, ports, paths)`,
      keys,
      'remove them; change the topology instead (e.g. servers, meshGateway) where it exposes the setting',
    );
  },

  peeringRegion(path: string, other: string): MeshformError {
    return new MeshformError(
      'peering-region',
      path,
      `peering with ${other} needs both VPCs in one AWS region`,
      other,
      'peer datacenters of the same region (connect others with transit or mesh gateways)',
    );
  },

  peeringNotAws(path: string, other: string): MeshformError {
    return new MeshformError(
      'peering-not-aws',
      path,
      `only VM datacenters on AWS can be VPC-peered; ${other} is not one`,
      other,
      'peer two VmDatacenter with VmHosts.onAws(...)',
    );
  },

  undeclaredHostService(path: string, name: string): MeshformError {
    return new MeshformError(
      'undeclared-host-service',
      path,
      'a host lists a service that is not declared',
      name,
      'declare it in `onPremisesServices` (or fix the name)',
    );
  },

  invalidRootId(path: string, what: string, id: unknown): MeshformError {
    return new MeshformError(
      'invalid-root-id',
      path,
      `${what} is not a root id`,
      id,
      'use lowercase letters, digits and hyphens (e.g. "root-2")',
    );
  },

  rotationToSameRoot(path: string, root: string): MeshformError {
    return new MeshformError(
      'rotation-to-same-root',
      path,
      'previousRoot is the active root',
      root,
      "set `root` to the new root's id and `previousRoot` to the one being retired",
    );
  },

  rotationWithoutCrossSigning(path: string, from: string, to: string): MeshformError {
    return new MeshformError(
      'rotation-without-cross-signing',
      path,
      `rotating the root from ${from} to ${to} without cross-signing is refused: datacenters still on ${from} would reject the new chains`,
      { previousRoot: from, root: to, crossSign: false },
      'keep `crossSign: true` (the default), or set `allowRotationWithoutCrossSigning: true` to accept the outage',
    );
  },

  ttlOrder(path: string, hierarchy: string, lifetimes: string): MeshformError {
    return new MeshformError(
      'ttl-order',
      path,
      `${hierarchy} lifetimes must grow from leaf to intermediate to root`,
      lifetimes,
      'make each certificate outlive the ones it issues (leaf < intermediate < root)',
    );
  },

  rotationWindowTooLong(path: string, window: number, server: number): MeshformError {
    return new MeshformError(
      'rotation-window-too-long',
      path,
      `the rotation window (${window} days) is not shorter than the server certificate lifetime (${server} days): every certificate would always be due`,
      window,
      'shorten rotationWindowDays or lengthen serverCertificateValidityDays',
    );
  },

  missingVaultAuth(path: string, datacenter: string, option: string): MeshformError {
    return new MeshformError(
      'missing-vault-auth',
      path,
      `datacenter "${datacenter}" has no way to authenticate to Vault`,
      option,
      `set \`${option}\` of CertificateAuthority.vault({...}) (${option === 'kubernetesAuth' ? 'VaultAuth.kubernetes({ role })' : 'VaultAuth.aws({ role })'})`,
    );
  },

  vaultOnOwnHosts(path: string, datacenter: string): MeshformError {
    return new MeshformError(
      'vault-on-own-hosts',
      path,
      `datacenter "${datacenter}" runs on your own hosts, which have no identity Vault can verify (Kubernetes or AWS IAM)`,
      datacenter,
      'use CertificateAuthority.offline() or awsPrivateCa() for this mesh, or run the datacenter on Kubernetes or EC2',
    );
  },

  invalidVaultCa(path: string): MeshformError {
    return new MeshformError(
      'invalid-vault-ca',
      path,
      'tlsCaCertificatePem must hold PEM CA certificates (CA:TRUE) and nothing else',
      '(PEM, not shown)',
      "give the CA certificate that issued Vault's TLS certificate (e.g. `vault read -field=certificate pki/cert/ca`)",
    );
  },

  invalidArn(path: string, what: string, arn: unknown): MeshformError {
    return new MeshformError(
      'invalid-arn',
      path,
      `${what} is not an AWS Private CA ARN`,
      arn,
      'give arn:aws:acm-pca:<region>:<account>:certificate-authority/<id>',
    );
  },

  trustDomainMismatch(path: string, datacenter: string, detail: string): MeshformError {
    return new MeshformError(
      'trust-domain-mismatch',
      path,
      `datacenter "${datacenter}" ${detail}: every datacenter must share the primary's trust root`,
      datacenter,
      'chain every datacenter to the one mesh root (one root CA in the primary, subordinates elsewhere)',
    );
  },

  unknownDatacenterReference(path: string, name: string, known: readonly string[]): MeshformError {
    return new MeshformError(
      'unknown-datacenter',
      path,
      'no datacenter of the mesh has this name',
      name,
      `use one of ${list(known)}`,
    );
  },

  invalidBackendOption(path: string, what: string, value: unknown, fix: string): MeshformError {
    return new MeshformError('invalid-backend', path, `state backend ${what} is not valid`, value, fix);
  },

  invalidStoreOption(path: string, what: string, value: string, fix: string): MeshformError {
    return new MeshformError('invalid-secret-store', path, `secret store ${what} is not valid`, value, fix);
  },

  secretStoreCorrupt(directory: string, detail: string): MeshformError {
    return new MeshformError(
      'secret-store-corrupt',
      directory,
      `the secret store is incomplete or unreadable (${detail})`,
      directory,
      'restore the directory from your backup; if this mesh was never deployed, delete the directory and run `meshform synth` to create a new store',
    );
  },

  /** A file of the secret store that cannot be used as it is: names the file, what is wrong and the fix. */
  storeFileCorrupt(file: string, problem: string, fix: string): MeshformError {
    return new MeshformError('secret-store-corrupt', file, `this file of the secret store ${problem}`, file, fix);
  },

  /** A construct id constructs would refuse (empty), or one its scope already has. */
  invalidConstructId(scopePath: string, id: unknown, existing?: string): MeshformError {
    const path = scopePath ? `${scopePath}/${String(id)}` : String(id);
    if (existing !== undefined) {
      return new MeshformError(
        'duplicate-construct-id',
        path,
        `${scopePath || 'the app'} already has a construct with this id (${existing})`,
        id,
        'give every construct of one scope its own id',
      );
    }
    return new MeshformError(
      'invalid-construct-id',
      scopePath || '(the app)',
      `the id of a construct created in ${scopePath || 'the app'} must be a non-empty string`,
      id,
      'give the construct an id, e.g. "shop" or "aws-east"',
    );
  },

  /** A construct created in a scope it cannot live in. */
  invalidScope(path: string, what: string, scope: unknown, fix: string): MeshformError {
    return new MeshformError(
      'invalid-scope',
      path,
      `${what} cannot be created in this scope`,
      describeKind(scope),
      fix,
    );
  },

  /** A required prop (or argument) is missing or of the wrong kind. */
  missingValue(path: string, what: string, value: unknown, fix: string): MeshformError {
    return new MeshformError(
      'missing-value',
      path,
      `${what} is missing or not of the expected kind (got ${describeKind(value)})`,
      value,
      fix,
    );
  },

  /** A number that must be a whole number in a range. */
  numberOutOfRange(path: string, what: string, value: unknown, min: number, max?: number): MeshformError {
    return new MeshformError(
      'invalid-number',
      path,
      max === undefined
        ? `${what} must be a whole number of at least ${min}`
        : `${what} must be a whole number from ${min} to ${max}`,
      value,
      max === undefined ? `use ${min} or more` : `use a whole number from ${min} to ${max}`,
    );
  },

  /** Something that should be a datacenter of this mesh is not a datacenter at all (e.g. a typo's undefined). */
  notADatacenter(path: string, what: string, value: unknown, known: readonly string[]): MeshformError {
    return new MeshformError(
      'not-a-datacenter',
      path,
      `${what} is not a datacenter (got ${describeKind(value)}; \`mesh.datacenter(name)\` gives undefined for a name the mesh does not have)`,
      value,
      known.length ? `pass one of the mesh's datacenters: ${list(known)}` : 'create the datacenter first and pass it',
    );
  },

  /** Something that should be a service of this mesh is not a service. */
  notAService(path: string, what: string, value: unknown): MeshformError {
    return new MeshformError(
      'not-a-service',
      path,
      `${what} is not a Service (got ${describeKind(value)})`,
      value,
      'pass a Service created with new Service(mesh, ...)',
    );
  },

  /** A datacenter of another mesh used by a service. */
  datacenterOfOtherMesh(
    path: string,
    service: string,
    datacenter: string,
    otherMesh: string,
    known: readonly string[],
  ): MeshformError {
    return new MeshformError(
      'datacenter-of-other-mesh',
      path,
      `service "${service}" cannot run in datacenter "${datacenter}": it belongs to mesh "${otherMesh}"`,
      datacenter,
      known.length
        ? `use a datacenter of the service's own mesh (${list(known)}), or declare the service in mesh "${otherMesh}"`
        : `declare the service in mesh "${otherMesh}"`,
    );
  },

  /** A service subset name Consul refuses (it becomes a DNS label in SNI names). */
  invalidSubsetName(path: string, service: string, name: unknown): MeshformError {
    return new MeshformError(
      'invalid-subset-name',
      path,
      `subset of "${service}" has a name Consul refuses (subset names are DNS labels in SNI names)`,
      name,
      `${NAME_RULE} (e.g. "v2")`,
    );
  },

  /** A subset filter that is not a valid Consul (go-bexpr) filter expression. */
  invalidFilter(path: string, service: string, subset: string, filter: unknown, problem: string): MeshformError {
    return new MeshformError(
      'invalid-filter',
      path,
      `the filter of subset "${subset}" of "${service}" is not a valid Consul filter expression (${problem})`,
      filter,
      'write <selector> <operator> <value>, e.g. `Service.Meta.version == v2` or `Service.Meta.version == "1.8"`, ' +
        'joined with and / or / not; selectors start with Service, Node or Checks',
    );
  },

  /** A regular expression Envoy (RE2) would refuse. */
  invalidRegex(path: string, what: string, regex: unknown, problem: string): MeshformError {
    return new MeshformError(
      'invalid-regex',
      path,
      `${what} is not a valid RE2 regular expression (${problem})`,
      regex,
      'write an RE2 expression (no lookaround, no backreferences), e.g. "^/api/v[0-9]+/"',
    );
  },

  /** An HTTP match (route or permission) Consul refuses. */
  invalidHttpMatch(path: string, what: string, problem: string, value: unknown, fix: string): MeshformError {
    return new MeshformError('invalid-http-match', path, `${what} ${problem}`, value, fix);
  },

  /** An HTTP status code outside 100-599. */
  invalidStatusCode(path: string, what: string, code: unknown): MeshformError {
    return new MeshformError(
      'invalid-status-code',
      path,
      `${what} holds a value that is not an HTTP status code`,
      code,
      'use whole numbers from 100 to 599, e.g. 503',
    );
  },

  /** A Kubernetes annotation key the API server refuses. */
  invalidAnnotationKey(path: string, key: string): MeshformError {
    return new MeshformError(
      'invalid-annotation-key',
      path,
      'mesh gateway service annotation key is not a Kubernetes qualified name',
      key,
      'use [prefix/]name: an optional DNS subdomain prefix, and a name of 1 to 63 letters, digits, "-", "_" and "." ' +
        'starting and ending with a letter or digit (e.g. "service.beta.kubernetes.io/aws-load-balancer-type")',
    );
  },

  /** Availability zones that cannot carry the network. */
  invalidAvailabilityZones(path: string, zones: unknown, problem: string, fix: string): MeshformError {
    return new MeshformError('invalid-availability-zones', path, `availability zones ${problem}`, zones, fix);
  },

  /** An AWS resource id of the wrong form. */
  invalidAwsId(path: string, what: string, value: unknown, example: string): MeshformError {
    return new MeshformError(
      'invalid-aws-id',
      path,
      `${what} is not a valid id`,
      value,
      `give an id such as "${example}"`,
    );
  },

  /** Text longer than Consul stores. */
  textTooLong(path: string, what: string, value: string, max: number): MeshformError {
    return new MeshformError(
      'text-too-long',
      path,
      `${what} is longer than the ${max} bytes Consul accepts (${Buffer.byteLength(value, 'utf8')} bytes)`,
      value.length > 40 ? `${value.slice(0, 40)}…` : value,
      `shorten it to ${max} bytes or fewer`,
    );
  },

  /** Two legs of a split send to the same subset. */
  duplicateSplitLeg(path: string, service: string, subset: string | undefined): MeshformError {
    return new MeshformError(
      'duplicate-split-leg',
      path,
      `two legs of the traffic split of "${service}" go to the same destination`,
      subset ?? '(default subset)',
      'give each leg its own subset and merge their weights',
    );
  },

  /** Another process kept the secret store locked longer than meshform waits. */
  storeLocked(lockFile: string, holder: string, waitedSeconds: number): MeshformError {
    return new MeshformError(
      'secret-store-locked',
      lockFile,
      `the secret store is locked by ${holder}; waited ${waitedSeconds} s`,
      lockFile,
      'wait for that run to finish and try again; if that process is not meshform (or is gone), remove the lock file',
    );
  },
};

/** Factories for every warning meshform emits. */
export const warnings = {
  awsPrivateCaCredentials(datacenter: string): MeshformWarning {
    const id = 'meshform/aws-pca-credentials';
    return {
      id,
      message:
        `[${id}] the Consul servers of "${datacenter}" need AWS credentials allowed to use AWS Private CA; meshform cannot grant ` +
        'them on this platform (use IRSA or pod identity on Kubernetes, an instance profile or environment on your hosts).',
    };
  },

  awsPrivateCaCreatedByConsul(datacenter: string): MeshformWarning {
    const id = 'meshform/aws-pca-subordinate-by-consul';
    return {
      id,
      message:
        `[${id}] "${datacenter}" has no private CA ARN: Consul will create a subordinate CA (billed monthly), and its servers need ` +
        'acm-pca:CreateCertificateAuthority, which IAM cannot scope. Set secondaryCaArns to use a CA you created.',
    };
  },

  singleServer(datacenter: string): MeshformWarning {
    const id = 'meshform/single-server';
    return {
      id,
      message:
        `[${id}] datacenter "${datacenter}" runs a single Consul server: losing it loses the datacenter's ` +
        'state and there is no failover. Use 3 or 5 servers for anything but a throwaway environment.',
    };
  },
};

/**
 * An error about a mesh's CA material in the secret store (raised by `meshform synth` and `meshform ca`):
 * names the material, what is wrong and how to fix it. Nothing is written when it is raised.
 */
export class CaMaterialError extends Error {
  /** Stable machine-readable code, e.g. `root-in-rotation-window`. */
  public readonly code: string;
  /** The material the error is about, e.g. `shop root root-1`, `shop intermediate east`. */
  public readonly subject: string;
  /** How to fix it. */
  public readonly fix: string;

  constructor(code: string, subject: string, problem: string, fix: string) {
    super(`[${subject}] ${problem}. Fix: ${fix}`);
    this.name = 'CaMaterialError';
    this.code = code;
    this.subject = subject;
    this.fix = fix;
  }
}

/** Factories for every CA material error. `subject` names the mesh and the certificate. */
export const caErrors = {
  rootExists(subject: string): CaMaterialError {
    return new CaMaterialError(
      'root-exists',
      subject,
      'this root already exists in the store',
      'choose another id with --id',
    );
  },

  rootMissing(subject: string, others: readonly string[], id: string): CaMaterialError {
    return new CaMaterialError(
      'root-missing',
      subject,
      `the topology names this root, but the store ${others.length ? `holds only ${others.join(', ')}` : 'holds no root'}`,
      `create it with \`meshform ca rotate --root --id ${id}\` or import it with \`meshform ca import --root --id ${id}\``,
    );
  },

  previousRootMissing(subject: string): CaMaterialError {
    return new CaMaterialError(
      'previous-root-missing',
      subject,
      'the topology trusts this previous root, but it is not in the store',
      'restore it from your backup, or remove previousRoot if the rotation is over',
    );
  },

  rootKeyMissing(subject: string, file: string): CaMaterialError {
    return new CaMaterialError(
      'root-key-missing',
      subject,
      `the root's key is not in the store (${file})`,
      'restore it from your offline backup',
    );
  },

  passphraseNeeded(subject: string, variable: string): CaMaterialError {
    return new CaMaterialError(
      'passphrase-needed',
      subject,
      'signing with this root needs its passphrase',
      `set ${variable} (or MESHFORM_CA_PASSPHRASE), or run meshform from a terminal to be asked for it`,
    );
  },

  wrongPassphrase(subject: string, variable: string): CaMaterialError {
    return new CaMaterialError(
      'wrong-passphrase',
      subject,
      'the passphrase does not decrypt the root key',
      `give the passphrase the root was created with (${variable} or MESHFORM_CA_PASSPHRASE)`,
    );
  },

  weakPassphrase(subject: string): CaMaterialError {
    return new CaMaterialError(
      'weak-passphrase',
      subject,
      'the passphrase is shorter than 12 characters',
      'use a passphrase of at least 12 characters',
    );
  },

  passphrasesDiffer(subject: string): CaMaterialError {
    return new CaMaterialError(
      'passphrases-differ',
      subject,
      'the two passphrases differ',
      'type the same passphrase twice',
    );
  },

  keyMismatch(subject: string, fix: string): CaMaterialError {
    return new CaMaterialError('key-mismatch', subject, 'the private key does not match the certificate', fix);
  },

  notCa(subject: string, fix: string): CaMaterialError {
    return new CaMaterialError('not-a-ca', subject, 'the certificate has no CA basic constraints (CA:TRUE)', fix);
  },

  notSelfSigned(subject: string): CaMaterialError {
    return new CaMaterialError(
      'root-not-self-signed',
      subject,
      'a root must be self-signed, this certificate is issued by another CA',
      'import the self-signed root of your hierarchy',
    );
  },

  notYetValid(subject: string, notBefore: Date, fix: string): CaMaterialError {
    return new CaMaterialError(
      'not-yet-valid',
      subject,
      `the certificate is not valid before ${notBefore.toISOString()} (check this machine's clock)`,
      fix,
    );
  },

  expiredRoot(subject: string, notAfter: Date): CaMaterialError {
    return new CaMaterialError(
      'root-expired',
      subject,
      `the root expired on ${notAfter.toISOString()}`,
      'an expired root cannot cross-sign: `meshform ca rotate --root --no-cross-sign --force`, then deploy every datacenter',
    );
  },

  rootInRotationWindow(subject: string, days: number, notAfter: Date, window: number): CaMaterialError {
    return new CaMaterialError(
      'root-in-rotation-window',
      subject,
      `the root expires in ${days} days (${notAfter.toISOString()}), inside the rotation window of ${window} days`,
      'rotate it now: `meshform ca rotate --root`, then follow the printed steps',
    );
  },

  foreignTrustDomain(subject: string, issuer: string, fix: string): CaMaterialError {
    return new CaMaterialError(
      'trust-domain-mismatch',
      subject,
      `the certificate does not chain to this mesh's roots (issuer ${issuer}): it belongs to another trust domain`,
      fix,
    );
  },

  crossSignedInvalid(subject: string, problem: string): CaMaterialError {
    return new CaMaterialError(
      'cross-signed-invalid',
      subject,
      problem,
      'delete the cross-signed.pem of the new root and synthesize again',
    );
  },

  leafIsCa(subject: string, fix: string): CaMaterialError {
    return new CaMaterialError('server-certificate-is-ca', subject, 'a server certificate must not be a CA', fix);
  },

  noServerCertificate(subject: string): CaMaterialError {
    return new CaMaterialError(
      'no-server-certificate',
      subject,
      'the datacenter has no server certificate yet',
      'run `meshform synth` to issue it',
    );
  },

  unreadable(subject: string, what: string, fix: string): CaMaterialError {
    return new CaMaterialError('unreadable', subject, `${what} cannot be read`, fix);
  },

  badCertificateFile(subject: string, count: number): CaMaterialError {
    return new CaMaterialError(
      'bad-certificate-file',
      subject,
      `the certificate file holds ${count} certificates`,
      'give a file holding the root certificate only',
    );
  },

  badRequest(subject: string, problem: string): CaMaterialError {
    return new CaMaterialError(
      'bad-certificate-request',
      subject,
      `cannot sign the request: ${problem}`,
      'give the PEM CSR your CA produced (e.g. `vault write -field=csr <mount>/intermediate/generate/internal common_name=...`)',
    );
  },

  rotationInProgress(subject: string, from: string, to: string): CaMaterialError {
    return new CaMaterialError(
      'rotation-in-progress',
      subject,
      `a rotation from ${from} to ${to} is in progress`,
      'finish it first: deploy every datacenter, then remove previousRoot',
    );
  },

  rotationWithoutCrossSigningRefused(subject: string): CaMaterialError {
    return new CaMaterialError(
      'rotation-without-cross-signing',
      subject,
      'a root rotation without cross-signing breaks trust between datacenters until every one is updated',
      'drop --no-cross-sign, or add --force to accept it',
    );
  },

  directRootSwitch(subject: string, from: string, to: string): CaMaterialError {
    return new CaMaterialError(
      'direct-root-switch',
      subject,
      `the active root changes from ${from} to ${to} with no rotation step: datacenters still on ${from} would reject the new chains`,
      `set \`root: '${to}', previousRoot: '${from}'\` and deploy every datacenter first (or allowRotationWithoutCrossSigning: true to accept the outage)`,
    );
  },

  retirementTooEarly(subject: string, from: string, to: string, missing: readonly string[]): CaMaterialError {
    return new CaMaterialError(
      'retirement-too-early',
      subject,
      `retiring ${from} is refused: ${missing.join(', ')} never received certificates under ${to}`,
      `keep \`previousRoot: '${from}'\`, synthesize and deploy every datacenter, then remove it`,
    );
  },

  unknownDatacenter(subject: string, datacenter: string, known: readonly string[]): CaMaterialError {
    return new CaMaterialError(
      'unknown-datacenter',
      subject,
      `the mesh has no datacenter "${datacenter}"`,
      `use one of ${list(known)}`,
    );
  },

  several(problems: readonly CaMaterialError[]): CaMaterialError {
    return new CaMaterialError(
      'ca-material-invalid',
      problems
        .map((p) => p.subject)
        .filter((s, i, all) => all.indexOf(s) === i)
        .join(', '),
      `the CA material has ${problems.length} problems:\n${problems.map((p) => `  - ${p.message}`).join('\n')}\n`,
      'fix each as said above',
    );
  },
};
