import type { DatacenterDescription } from '../datacenter';
import type { CaPlan, MeshCaSummary } from '../certificate-authority';
import type { FederationLink } from '../federation';
import type { ServerCertificateRequest } from './ca-material';

/** Version of the mesh manifest format written to `<outdir>/meshform/<mesh>.json`. */
export const MESH_MANIFEST_FORMAT = 2;

/** Directory (under the synth output) that holds one manifest per mesh. */
export const MESH_MANIFEST_DIR = 'meshform';

/** Directory (under MESH_MANIFEST_DIR) with each mesh's service mesh CA configuration as Consul's API takes it. */
export const CONNECT_CA_DIR = 'connect-ca';

/** A mesh as data: topology, deploy order and the names (never the values) of its secret inputs. */
export interface MeshManifest {
  readonly format: number;
  readonly mesh: string;
  readonly consulVersion: string;
  readonly chartVersion: string;
  readonly domain: string;
  readonly primary: string;
  /** Terraform variable names that carry the mesh's secrets into its datacenter stacks. */
  readonly secretVariables: readonly string[];
  /** The certificate authority plan and each datacenter's server certificate request. */
  readonly ca: {
    readonly plan: CaPlan;
    readonly description: string;
    readonly requests: readonly ServerCertificateRequest[];
    /** The service mesh CA as the primary configures it (provider and the settings that identify its root). */
    readonly meshCa: MeshCaSummary;
  };
  /** Stack names in a safe deploy order. */
  readonly deployOrder: readonly string[];
  readonly datacenters: readonly DatacenterDescription[];
  readonly federation: readonly FederationLink[];
  /** Warnings raised at synth, with their stable ids. */
  readonly warnings: readonly { readonly id: string; readonly path: string; readonly message: string }[];
}
