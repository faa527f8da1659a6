import { Construct } from 'constructs';
import { Datacenter, DatacenterDescription, DatacenterProps, GatewayReach, Platform } from './datacenter';
import type { CaHosting } from './certificate-authority';
import { errors } from './errors';
import { EksCluster, KubeconfigCluster, KubernetesCluster } from './kubernetes-cluster';
import type { Mesh } from './mesh';
import { MeshGatewayServiceType } from './mesh-gateway';
import type { ServerCertificateRequest } from './private/ca-material';
import { Cidr, parseCidr } from './private/cidr';
import type { TerraformStack } from './private/engine';
import {
  ConsulHelmValues,
  ConsulSecretRefs,
  consulHelmValues,
  describeSecurity,
  toValuesYaml,
} from './private/helm-values';
import { isDatacenterName } from './private/validation';
import { EksClusterStack } from '../stacks/eks-cluster-stack';
import { KubernetesDatacenterStack } from '../stacks/kubernetes-datacenter-stack';
import { MeshConfigStack } from '../stacks/mesh-config-stack';
import { meshConfigEntries } from './private/config-entries';

/** Props of a KubernetesDatacenter. */
export interface KubernetesDatacenterProps extends DatacenterProps {
  /**
   * The cluster Consul is installed on: an existing one reached by kubeconfig
   * (`KubernetesCluster.fromKubeconfig({ context })`, any cloud) or an EKS cluster meshform creates
   * (`KubernetesCluster.eks({ region, vpcCidr })`).
   */
  readonly cluster: KubernetesCluster;
  /**
   * Kubernetes namespace Consul is installed into.
   * @default "consul"
   */
  readonly namespace?: string;
  /**
   * Name of the Helm release.
   * @default "consul"
   */
  readonly releaseName?: string;
}

/**
 * A Consul datacenter on Kubernetes.
 *
 * It installs the official consul-k8s chart with TLS (verify, HTTPS only, auto-encrypt), chart-managed ACLs
 * (default deny), gossip encryption, connect inject, a mesh gateway and metrics, and WAN-federates with the
 * mesh's primary through mesh gateways. Its Consul stack is `<mesh>-<name>`; an EKS cluster meshform creates
 * lives in the stack `<mesh>-<name>-infra`, which deploys first.
 */
export class KubernetesDatacenter extends Datacenter {
  public readonly platform = Platform.KUBERNETES;
  /** Where the cluster comes from. */
  public readonly cluster: KubernetesCluster;
  /** Namespace of Consul. */
  public readonly namespace: string;
  /** Helm release name. */
  public readonly releaseName: string;
  /** The Consul stack. */
  public readonly stack: KubernetesDatacenterStack;
  /** The AWS infra stack of an EKS cluster meshform creates. */
  public readonly infraStack?: EksClusterStack;
  /** Primary only: the stack of the mesh's config entries on this cluster. */
  public readonly configStack?: MeshConfigStack;

  constructor(scope: Mesh, id: string, props: KubernetesDatacenterProps) {
    super(scope as Construct, id, props, [1, 3, 5]);
    const path = this.node.path;
    this.cluster = props.cluster;
    this.cluster.validate(path);
    this.namespace = props.namespace ?? 'consul';
    if (!isDatacenterName(this.namespace)) throw errors.invalidKubernetesName(path, 'namespace', this.namespace);
    this.releaseName = props.releaseName ?? 'consul';
    if (!isDatacenterName(this.releaseName) || this.releaseName.length > 53) {
      throw errors.invalidKubernetesName(path, 'Helm release name', this.releaseName);
    }
    if (!this.isPrimary && this.cluster instanceof KubeconfigCluster && this.cluster.apiServerUrl === undefined) {
      throw errors.missingKubernetesApiUrl(path, this.name);
    }
    let vpcCidr: Cidr | undefined;
    if (this.cluster instanceof EksCluster) {
      vpcCidr = checkVpcCidr(path, this.cluster.options.vpcCidr, 20);
      if (this.cluster.nodes < this.servers) throw errors.tooFewNodes(path, this.cluster.nodes, this.servers);
    }
    this.register();
    if (this.cluster instanceof EksCluster) {
      const infraName = `${this.stackName}-infra`;
      this.infraStack = new EksClusterStack(this.stackScope(infraName), infraName, {
        datacenter: this,
        cluster: this.cluster,
        vpcCidr: vpcCidr!,
      });
    }
    this.stack = new KubernetesDatacenterStack(this.stackScope(this.stackName), this.stackName, { datacenter: this });
    if (this.infraStack) this.stack.addDependency(this.infraStack);
    if (this.isPrimary) {
      const configName = `${this.stackName}-config`;
      this.configStack = new MeshConfigStack(this.stackScope(configName), configName, { primary: this });
      this.configStack.addDependency(this.stack);
    }
  }

  public override finalize(): void {
    // the mesh's config entries live on the primary's cluster once every service is known
    this.configStack?.build();
  }

  /** The VPC block of an EKS cluster meshform creates. */
  public get vpcCidr(): string | undefined {
    return this.cluster instanceof EksCluster ? this.cluster.options.vpcCidr : undefined;
  }

  public get stacks(): readonly TerraformStack[] {
    return [...(this.infraStack ? [this.infraStack] : []), this.stack, ...(this.configStack ? [this.configStack] : [])];
  }

  public get controlPlaneStack(): TerraformStack {
    return this.stack;
  }

  public validateInMesh(): void {
    // Everything a Kubernetes datacenter needs from the mesh is checked by the mesh and its federation.
  }

  /**
   * A LoadBalancer gateway is internet-facing unless an annotation makes its load balancer internal (AWS, GKE,
   * Azure); a NodePort gateway is reachable on the nodes' network only, unless an address is declared.
   */
  protected get gatewayReach(): GatewayReach {
    const gw = this.meshGateway;
    if (gw.serviceType === MeshGatewayServiceType.NODE_PORT) return gw.address ? 'internet' : 'network';
    const a = gw.serviceAnnotations;
    const internal =
      a['service.beta.kubernetes.io/aws-load-balancer-internal'] === 'true' ||
      a['service.beta.kubernetes.io/aws-load-balancer-scheme'] === 'internal' ||
      a['networking.gke.io/load-balancer-type'] === 'Internal' ||
      a['cloud.google.com/load-balancer-type'] === 'Internal' ||
      a['service.beta.kubernetes.io/azure-load-balancer-internal'] === 'true';
    return internal ? 'network' : 'internet';
  }

  /** The chart mounts `server.extraVolumes` secrets at /consul/userconfig/<secret name>. */
  protected get caProviderFileDirectory(): string {
    return `/consul/userconfig/${this.caProviderSecretName}`;
  }

  /** Name of the secret holding the service mesh CA provider's files (e.g. Vault's TLS CA), when it has any. */
  public get caProviderSecretName(): string {
    return `${this.releaseName}-meshform-ca-provider`;
  }

  public get hosting(): CaHosting {
    return this.cluster instanceof EksCluster ? 'eks' : 'kubernetes';
  }

  /**
   * The chart's server certificate names (as the chart documents them for `server.serverCert`).
   * @internal
   */
  public serverCertificateRequest(): ServerCertificateRequest {
    const base = this.baseServerNames();
    const fullname = 'consul';
    return {
      datacenter: this.name,
      dnsNames: [
        ...base.dnsNames,
        `${fullname}-server`,
        `*.${fullname}-server`,
        `*.${fullname}-server.${this.namespace}`,
        `*.${fullname}-server.${this.namespace}.svc`,
      ],
      ipAddresses: base.ipAddresses,
    };
  }

  /**
   * The consul-k8s values of this datacenter as YAML (no secret: secrets are referenced by name).
   * @internal
   */
  public renderHelmValues(secretRefs: ConsulSecretRefs): string {
    return toValuesYaml(this.helmValues(secretRefs));
  }

  /**
   * The consul-k8s values of this datacenter.
   * @internal
   */
  public helmValues(secretRefs: ConsulSecretRefs = this.stack.controlPlane.secretRefs): ConsulHelmValues {
    const mesh = this.mesh;
    const gw = this.meshGateway;
    const access = this.stack.access;
    return consulHelmValues({
      datacenter: this.name,
      domain: mesh.domain,
      consulImage: `hashicorp/consul:${mesh.consulVersion}`,
      controlPlaneImage: `hashicorp/consul-k8s-control-plane:${mesh.chartVersion}`,
      servers: this.servers,
      primary: this.isPrimary,
      primaryDatacenter: mesh.primary.name,
      primaryGateways: this.isPrimary ? [] : mesh.federation.primaryGateways,
      kubernetesApiUrl: access.apiServerUrl,
      secrets: secretRefs,
      connect: mesh.certificateAuthority.connectConfig(this.caView),
      meshGateway: {
        replicas: gw.replicas,
        serviceType: gw.serviceType,
        port: gw.port,
        nodePort: gw.nodePort,
        address: gw.address,
        annotations: sortKeys({ ...access.gatewayAnnotations, ...gw.serviceAnnotations }),
      },
    });
  }

  public describe(): DatacenterDescription {
    const gw = this.meshGateway;
    const exposure =
      gw.serviceType === MeshGatewayServiceType.NODE_PORT ? `NodePort ${gw.nodePort}` : `LoadBalancer :${gw.port}`;
    const mesh = this.mesh;
    const installs = [
      ...(this.cluster instanceof EksCluster
        ? [
            `infra: VPC ${this.cluster.options.vpcCidr} over ${this.cluster.availabilityZones.length} zones, ` +
              `${this.cluster.describe()}, KMS-encrypted secrets, EBS CSI driver, ${this.cluster.availabilityZones.length} Elastic IPs for the mesh gateway`,
          ]
        : [`cluster: ${this.cluster.describe()}`]),
      `namespace ${this.namespace} with the mesh's secrets (trusted roots, server certificate, gossip key, ACL token${
        this.isPrimary ? ', ACL bootstrap config' : ''
      })`,
      `helm release ${this.releaseName}: consul-k8s ${mesh.chartVersion}, Consul ${mesh.consulVersion}, ${this.servers} server${
        this.servers === 1 ? '' : 's'
      }`,
      `security: ${describeSecurity(this.helmValues())}`,
      `connect inject, metrics, mesh gateway (${exposure}, ${gw.replicas} replica${gw.replicas === 1 ? '' : 's'}${
        gw.address ? `, address ${gw.wanEndpoint}` : ''
      })`,
      ...(this.configStack
        ? [
            `config entries (replicated to every datacenter): ${
              meshConfigEntries(
                mesh.services.map((sv) => sv.describe()),
                mesh.traffic,
              ).length
            } custom resources in ${this.configStack.node.id}`,
          ]
        : []),
    ];
    return this.describeWith(installs, exposure);
  }
}

function sortKeys(o: { readonly [key: string]: string }): { [key: string]: string } {
  return Object.fromEntries(
    Object.keys(o)
      .sort()
      .map((k) => [k, o[k]!]),
  );
}

/** Parses and checks a VPC block: well-formed, no host bits, /16 up to /maxPrefix. */
export function checkVpcCidr(path: string, cidr: string, maxPrefix: number): Cidr {
  const parsed = parseCidr(cidr);
  if (!parsed.ok) {
    if (parsed.reason === 'host-bits') throw errors.cidrHostBits(path, 'VPC CIDR', cidr, parsed.canonical!);
    throw errors.malformedCidr(path, 'VPC CIDR', cidr);
  }
  if (parsed.cidr.prefix < 16 || parsed.cidr.prefix > maxPrefix)
    throw errors.cidrSize(path, 'VPC CIDR', cidr, 16, maxPrefix);
  return parsed.cidr;
}
