import { Construct } from 'constructs';
import { Datacenter, DatacenterDescription, DatacenterProps, GatewayReach, Platform } from './datacenter';
import { awsPrivateCaPermissions, CaHosting } from './certificate-authority';
import { errors, MeshformError } from './errors';
import { EksCluster, KubeconfigCluster, KubernetesCluster } from './kubernetes-cluster';
import type { Mesh } from './mesh';
import { MeshGatewayServiceType } from './mesh-gateway';
import type { ServerCertificateRequest } from './private/ca-material';
import { Cidr, parseCidr } from './private/cidr';
import type { TerraformStack } from './private/engine';
import {
  CHART_FULLNAME,
  ConsulHelmValues,
  ConsulSecretRefs,
  consulHelmValues,
  describeSecurity,
  toValuesYaml,
} from './private/helm-values';
import { ClusterConnection, EKS_SERVER_STORAGE_CLASS } from './private/kubernetes-access';
import { FederationLogin, federationLogin, meshformEgress } from './private/federation-reach';
import { isDatacenterName, isDnsName } from './private/validation';
import { EksClusterStack } from '../stacks/eks-cluster-stack';
import { KubernetesDatacenterStack } from '../stacks/kubernetes-datacenter-stack';
import { MeshConfigResource, MeshConfigStack } from '../stacks/mesh-config-stack';
import type { Service } from './service';
import {
  ConfigEntry,
  meshConfigEntries,
  SERVICE_ENTRY_KINDS,
  serviceConfigEntries,
  toCustomResource,
} from './private/config-entries';

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
  /**
   * StorageClass of the Consul servers' volumes (the chart's `server.storageClass`).
   * @default - an EKS cluster meshform creates: the encrypted gp3 class meshform creates (`meshform-ebs-gp3-encrypted`); any other cluster: its default StorageClass
   */
  readonly serverStorageClass?: string;
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
  /** StorageClass of the servers' volumes, when one is named (else the cluster's default). */
  public readonly serverStorageClass?: string;
  /** The Consul stack. */
  public readonly stack: KubernetesDatacenterStack;
  /** The AWS infra stack of an EKS cluster meshform creates. */
  public readonly infraStack?: EksClusterStack;
  /** Primary only: the stack of the mesh's config entries on this cluster. */
  public readonly configStack?: MeshConfigStack;
  /** Whether the infra stack admits the primary's egress addresses (a secondary's, once the primary is known). */
  private admitsPrimary = false;
  /** True while the config entries wait for the mesh's validation to render (see `_meshChanged`). */
  private entriesPending = false;
  /** The chart values once the mesh is prepared (they no longer change then). */
  private preparedHelmValues?: string;

  constructor(scope: Mesh, id: string, props: KubernetesDatacenterProps) {
    super(scope as Construct, id, props, [1, 3, 5]);
    const path = this.node.path;
    this.cluster = props.cluster;
    if (!(this.cluster instanceof KubernetesCluster))
      throw errors.missingValue(
        path,
        'cluster',
        this.cluster,
        'set `cluster: KubernetesCluster.fromKubeconfig({ context })` or `KubernetesCluster.eks({ region, vpcCidr })`',
      );
    this.cluster.validate(path);
    this.namespace = props.namespace ?? 'consul';
    if (!isDatacenterName(this.namespace)) throw errors.invalidKubernetesName(path, 'namespace', this.namespace);
    this.releaseName = props.releaseName ?? 'consul';
    if (!isDatacenterName(this.releaseName) || this.releaseName.length > 53) {
      throw errors.invalidKubernetesName(path, 'Helm release name', this.releaseName);
    }
    this.serverStorageClass =
      props.serverStorageClass ?? (this.cluster instanceof EksCluster ? EKS_SERVER_STORAGE_CLASS : undefined);
    if (this.serverStorageClass !== undefined && !isDnsName(this.serverStorageClass)) {
      throw errors.invalidValue(
        path,
        'serverStorageClass',
        this.serverStorageClass,
        'give the name of a StorageClass of the cluster: lowercase RFC 1123 labels separated by dots',
      );
    }
    if (!this.isPrimary && this.cluster instanceof KubeconfigCluster && this.cluster.apiServerUrl === undefined) {
      throw errors.missingKubernetesApiUrl(path, this.name);
    }
    const remote = this.backend.remoteWorkspace(this.stackName);
    if (remote !== undefined && this.cluster instanceof KubeconfigCluster) {
      throw errors.remoteExecutionKubeconfig(path, remote, this.cluster.context);
    }
    let vpcCidr: Cidr | undefined;
    if (this.cluster instanceof EksCluster) {
      vpcCidr = checkVpcCidr(path, this.cluster.options.vpcCidr, 20);
      if (this.cluster.nodes < this.servers) throw errors.tooFewNodes(path, this.cluster.nodes, this.servers);
    }
    const infraName = `${this.stackName}-infra`;
    const configName = `${this.stackName}-config`;
    this.register([
      ...(this.cluster instanceof EksCluster ? [infraName] : []),
      this.stackName,
      ...(this.isPrimary ? [configName] : []),
    ]);
    const mesh = this.mesh;
    const connection = clusterConnection(this.cluster);
    if (this.cluster instanceof EksCluster) {
      const eks = this.cluster;
      this.infraStack = new EksClusterStack(this, infraName, {
        ...this.stackProps,
        mesh: mesh.name,
        datacenter: this.name,
        clusterName: this.stackName,
        region: eks.options.region,
        awsEndpoint: mesh.aws.url,
        vpcCidr: vpcCidr!,
        availabilityZones: eks.availabilityZones,
        kubernetesVersion: eks.kubernetesVersion,
        nodeInstanceType: eks.nodeInstanceType,
        nodes: eks.nodes,
        apiPublicAccessCidrs: eks.options.apiPublicAccessCidrs,
        hostedZoneId: eks.options.hostedZoneId,
        gatewayAddress: this.meshGateway.address,
        consulNamespace: this.namespace,
        consulServerPolicyStatements: awsPrivateCaPermissions(mesh.certificateAuthority, this.caView),
      });
    }
    this.stack = new KubernetesDatacenterStack(this, this.stackName, {
      ...this.stackProps,
      mesh: mesh.name,
      datacenter: this.name,
      primary: this.isPrimary,
      cluster: connection,
      clusterName: this.stackName,
      awsEndpoint: mesh.aws.url,
      // meshform creates its StorageClass unless the datacenter names another one
      createServerStorageClass: this.serverStorageClass === EKS_SERVER_STORAGE_CLASS,
      namespace: this.namespace,
      releaseName: this.releaseName,
      chartVersion: mesh.chartVersion,
      caProviderFiles: mesh.certificateAuthority.providerFiles(),
      caProviderSecretName: this.caProviderSecretName,
      // rendered at each of cdktf's resolutions of the release; once the mesh is prepared they no longer change
      helmValues: (refs) =>
        this.mesh.isPrepared ? (this.preparedHelmValues ??= this.renderHelmValues(refs)) : this.renderHelmValues(refs),
    });
    if (this.infraStack) this.stack.addDependency(this.infraStack);
    if (this.isPrimary) {
      this.configStack = new MeshConfigStack(this, configName, {
        ...this.stackProps,
        mesh: mesh.name,
        datacenter: this.name,
        cluster: connection,
        clusterName: this.stackName,
        awsEndpoint: mesh.aws.url,
      });
      this.configStack.addDependency(this.stack);
    }
    this.declared();
  }

  /**
   * Brings the stacks up to date: the primary's config stack holds one custom resource per config entry of
   * the mesh; a secondary's EKS API admits the primary's servers once meshform knows where they leave their
   * network.
   * @internal
   */
  public override _meshChanged(service?: Service): void {
    const mesh = this.mesh;
    if (this.configStack) {
      try {
        this.renderConfigEntries(this.configStack, this.entriesPending ? undefined : service);
        this.entriesPending = false;
      } catch (e) {
        if (e instanceof MeshformError) throw e;
        // The mesh validates its declarations at synthesis, before anything is written: one it will refuse
        // then (e.g. a permission without a match) may not render yet. The entries render once it is valid.
        this.entriesPending = true;
      }
    }
    const primary = mesh._declaredPrimary;
    if (this.infraStack && !this.isPrimary && primary && !this.admitsPrimary) {
      // the primary is known for good once declared (the mesh refuses a second one)
      this.admitsPrimary = true;
      const egress = meshformEgress(primary);
      if (egress) this.infraStack.admitPrimaryEgress(egress);
    }
  }

  /** @internal */
  public override _meshValidated(): void {
    if (this.configStack && this.entriesPending) this.renderConfigEntries(this.configStack);
  }

  /** The primary's config stack: one custom resource per config entry of the mesh. */
  /** Renders the config entries: only `service`'s when given (they depend on nothing another declaration changes), else all. */
  private renderConfigEntries(configStack: MeshConfigStack, service?: Service): void {
    const mesh = this.mesh;
    const labels = { 'app.kubernetes.io/managed-by': 'meshform', 'meshform.io/mesh': mesh.name };
    const resource = (entry: ConfigEntry): MeshConfigResource => ({
      id: `${entry.kind}-${entry.name}`,
      manifest: toCustomResource(entry, this.namespace, labels),
    });
    if (service) {
      const entries = serviceConfigEntries(service.describe(), (name) => mesh.service(name)?._circuitBreaker);
      configStack.updateResources(
        SERVICE_ENTRY_KINDS.map((kind) => `${kind}-${service.name}`),
        entries.map(resource),
      );
    } else {
      const entries = meshConfigEntries(
        mesh.services.map((s) => s.describe()),
        mesh.traffic,
      );
      configStack.setResources(entries.map(resource));
    }
  }

  public override federationLogin(): FederationLogin | undefined {
    if (this.isPrimary) return undefined;
    const eks = this.cluster instanceof EksCluster;
    const apiServer =
      this.cluster instanceof KubeconfigCluster
        ? (this.cluster.apiServerUrl ?? '(no API server URL)')
        : `the EKS API endpoint of ${this.stackName}`;
    return federationLogin(
      this.cluster,
      apiServer,
      this.mesh.primary.name,
      meshformEgress(this.mesh.primary),
      `KubernetesCluster.${eks ? 'eks' : 'fromKubeconfig'}({ ..., apiServerAdmitsPrimary: true })`,
    );
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
    // The primary's servers call a secondary's API server for every login through its auth method.
    if (!this.isPrimary && this.cluster instanceof EksCluster && !this.cluster.options.apiPublicAccessCidrs?.length) {
      throw errors.privateSecondaryApi(this.node.path, this.name, this.mesh.primary.name);
    }
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
   * The names the chart's own server certificate carries (consul-k8s v2.0.3 templates/_helpers.tpl,
   * `consul.serverTLSAltNames`, with `global.name` "consul" as the chart's full name): among them
   * `consul-server.<namespace>.svc`, the address server-acl-init, the connect injector, the mesh gateway and the
   * dataplanes dial and check the certificate against (`consul.consulK8sConsulServerEnvVars`).
   * @internal
   */
  public serverCertificateRequest(): ServerCertificateRequest {
    const base = this.baseServerNames();
    const server = `${CHART_FULLNAME}-server`;
    const ns = this.namespace;
    return {
      datacenter: this.name,
      dnsNames: [
        ...base.dnsNames,
        server,
        `*.${server}`,
        `*.${server}.${ns}`,
        `${server}.${ns}`,
        `*.${server}.${ns}.svc`,
        `${server}.${ns}.svc`,
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
      storageClass: this.serverStorageClass,
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
      `namespace ${this.namespace} with the mesh's secrets (trusted roots, server certificate, gossip key, ${
        this.isPrimary ? 'ACL bootstrap token, ACL replication token' : 'ACL replication token'
      })`,
      this.cluster instanceof EksCluster && this.serverStorageClass === EKS_SERVER_STORAGE_CLASS
        ? `server volumes: StorageClass ${EKS_SERVER_STORAGE_CLASS} (EBS gp3, encrypted; created by meshform)`
        : `server volumes: ${this.serverStorageClass ? `StorageClass ${this.serverStorageClass}` : "the cluster's default StorageClass"}`,
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

/** How a stack reaches a cluster: its kubeconfig, or the EKS cluster meshform creates, by region. */
function clusterConnection(cluster: KubernetesCluster): ClusterConnection {
  if (cluster instanceof KubeconfigCluster) {
    return { kind: 'kubeconfig', path: cluster.path, context: cluster.context, apiServerUrl: cluster.apiServerUrl };
  }
  if (cluster instanceof EksCluster) return { kind: 'eks', region: cluster.options.region };
  throw new Error(`unsupported cluster kind ${cluster.constructor.name}`);
}
