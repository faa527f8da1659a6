import { Construct } from 'constructs';
import { Cloud } from '../constructs/datacenter';
import { errors } from '../constructs/errors';
import { KubernetesCluster } from '../constructs/kubernetes-cluster';
import { KubernetesDatacenter } from '../constructs/kubernetes-datacenter';
import { Mesh, MeshProps } from '../constructs/mesh';
import { Service, ServiceProtocol } from '../constructs/service';
import { VmDatacenter } from '../constructs/vm-datacenter';
import { GatewayExposure, HostRole, MachineImage, VmHosts, VmNetwork } from '../constructs/vm-hosts';

/** A service the pattern runs on the VMs. */
export interface HybridServiceSpec {
  /** Service name. */
  readonly name: string;
  /** Port it listens on. */
  readonly port: number;
  /**
   * Protocol.
   * @default ServiceProtocol.TCP
   */
  readonly protocol?: ServiceProtocol;
}

/** One of your own hosts in the pattern's on-premises datacenter. */
export interface HybridHostSpec {
  /** Host name. */
  readonly name: string;
  /** Private IP address. */
  readonly address: string;
  /** Role. */
  readonly role: HostRole;
  /**
   * Names of on-premises services this client host runs.
   * @default - none
   */
  readonly services?: readonly string[];
}

/** Props of a HybridMesh. */
export interface HybridMeshProps extends MeshProps {
  /** The Kubernetes cluster of the primary datacenter. */
  readonly kubernetes: KubernetesCluster;
  /** Stable DNS name of the primary's mesh gateway. */
  readonly primaryGatewayAddress: string;
  /** AWS region of the VM datacenter. */
  readonly vmRegion: string;
  /** CIDR of the VM datacenter's new VPC. */
  readonly vmCidr: string;
  /** AMI of the VM hosts (Debian 12 or similar with cloud-init, systemd and python3). */
  readonly vmImage: MachineImage;
  /** Services running on the VMs, each on its own hosts with an Envoy sidecar. */
  readonly vmServices: readonly HybridServiceSpec[];
  /**
   * Your own hosts (on-premises) forming a third datacenter.
   * @default - none
   */
  readonly onPremisesHosts?: readonly HybridHostSpec[];
  /**
   * Services of the on-premises datacenter (placed on hosts by name).
   * @default - none
   */
  readonly onPremisesServices?: readonly HybridServiceSpec[];
}

/**
 * L3 pattern: a hybrid mesh — a Kubernetes primary, an AWS VM datacenter whose gateway faces the internet
 * (the primary is in another network), and optionally a datacenter on your own hosts. Built only from the
 * public constructs; reach them as `mesh`, `kubernetes`, `vms`, `onPremises`, `services`.
 */
export class HybridMesh extends Construct {
  public readonly mesh: Mesh;
  public readonly kubernetes: KubernetesDatacenter;
  public readonly vms: VmDatacenter;
  public readonly onPremises?: VmDatacenter;
  public readonly services: readonly Service[];

  private unknownService(name: string): never {
    throw errors.undeclaredHostService(this.node.path, name);
  }

  constructor(scope: Construct, id: string, props: HybridMeshProps) {
    super(scope, id);
    const {
      kubernetes,
      primaryGatewayAddress,
      vmRegion,
      vmCidr,
      vmImage,
      vmServices,
      onPremisesHosts,
      onPremisesServices,
      ...meshProps
    } = props;
    this.mesh = new Mesh(this, 'Mesh', { name: id, ...meshProps });
    this.kubernetes = new KubernetesDatacenter(this.mesh, 'kubernetes', {
      primary: true,
      cluster: kubernetes,
      meshGateway: { address: primaryGatewayAddress },
    });
    this.vms = new VmDatacenter(this.mesh, 'vms', {
      cloud: Cloud.AWS,
      hosts: VmHosts.onAws({
        region: vmRegion,
        network: VmNetwork.newVpc({ cidr: vmCidr }),
        machineImage: vmImage,
        gatewayExposure: GatewayExposure.networkLoadBalancer({ internetFacing: true, allowedCidrs: ['0.0.0.0/0'] }),
      }),
    });
    const vmServiceList = vmServices.map(
      (s) => new Service(this.mesh, s.name, { port: s.port, protocol: s.protocol, datacenters: [this.vms] }),
    );
    const local = (onPremisesServices ?? []).map(
      (s) => new Service(this.mesh, s.name, { port: s.port, protocol: s.protocol }),
    );
    this.services = [...vmServiceList, ...local];
    if (onPremisesHosts) {
      this.onPremises = new VmDatacenter(this.mesh, 'on-premises', {
        cloud: Cloud.ON_PREMISES,
        hosts: VmHosts.existing(
          onPremisesHosts.map((h) => ({
            name: h.name,
            address: h.address,
            role: h.role,
            services: (h.services ?? []).map((name) => local.find((s) => s.name === name) ?? this.unknownService(name)),
          })),
        ),
      });
    }
  }
}
