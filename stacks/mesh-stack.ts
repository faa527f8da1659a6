import * as fs from 'node:fs';
import * as path from 'node:path';
import { Construct } from 'constructs';
import { Mesh } from '../constructs/mesh';
import { DISABLE_STACK_TRACE_IN_METADATA, type ISynthesisSession, TerraformStack } from '../constructs/private/engine';
import { CONNECT_CA_DIR, MESH_MANIFEST_DIR } from '../constructs/private/mesh-manifest';
import type { StateBackend } from '../constructs/state-backend';

/** Props of every meshform stack. */
export interface MeshStackProps {
  /** The mesh the stack belongs to. */
  readonly mesh: Mesh;
  /** Where the stack keeps its state. */
  readonly backend: StateBackend;
}

/**
 * Base of every stack meshform creates. Before the first stack of an app is prepared for synthesis it
 * validates the whole mesh (so an invalid topology writes nothing) and records the deploy order; the
 * primary's control-plane stack also writes the mesh manifest (`<outdir>/meshform/<mesh>.json`) that the
 * `meshform` command reads.
 */
export abstract class MeshStack extends TerraformStack {
  /** The mesh the stack belongs to. */
  public readonly mesh: Mesh;

  protected constructor(scope: Construct, id: string, props: MeshStackProps) {
    super(scope, id);
    // Annotations in the manifest carry no stack trace (absolute paths): output is the same on every machine.
    this.node.setContext(DISABLE_STACK_TRACE_IN_METADATA, true);
    this.mesh = props.mesh;
    props.backend.bind(this, id);
    const inner = this.synthesizer;
    this.synthesizer = {
      synthesize: (session: ISynthesisSession) => {
        inner.synthesize(session);
        this.onSynthesized(session);
        if (this.mesh.primary.controlPlaneStack === this) writeMeshManifest(this.mesh, session.outdir);
      },
    };
  }

  /** Writes files of the stack beside its Terraform (host bundles, rendered boot files); none by default. */
  protected onSynthesized(_session: ISynthesisSession): void {}

  public override prepareStack(): void {
    // every mesh of the app, not only this one: an invalid mesh anywhere stops synthesis before anything is written
    Mesh.prepareAll(this.node.root);
    super.prepareStack();
  }
}

function writeMeshManifest(mesh: Mesh, outdir: string): void {
  const dir = path.join(outdir, MESH_MANIFEST_DIR);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${mesh.name}.json`), `${JSON.stringify(mesh.manifest(), null, 2)}\n`);
  // Consul applies a later service mesh CA change only through its API: the body, ready for set-config.
  const connect = path.join(dir, CONNECT_CA_DIR);
  fs.mkdirSync(connect, { recursive: true });
  const body = mesh.certificateAuthority.connectCaApiBody(mesh.primary.caView);
  fs.writeFileSync(path.join(connect, `${mesh.name}.json`), `${JSON.stringify(body, null, 2)}\n`);
}
