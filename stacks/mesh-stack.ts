import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Construct, IConstruct } from 'constructs';
import {
  App,
  Aspects,
  copyLiteral,
  DISABLE_STACK_TRACE_IN_METADATA,
  type IAspect,
  type ISynthesisSession,
  isLiteralData,
  type TerraformResource,
  TerraformStack,
  withShortTokenStacks,
} from '../constructs/private/engine';
import { stableJson } from '../constructs/private/stable-json';

/** What binds a stack's Terraform state (meshform's `StateBackend` is one). */
export interface StackBackend {
  /** Configures the stack's backend; `stackName` names its state. */
  bind(stack: TerraformStack, stackName: string): void;
}

/** What the owner of a stack (its mesh) does around the stack's synthesis. */
export interface MeshStackHooks {
  /**
   * Runs before the stack is prepared for synthesis, before anything is written: the mesh validates itself
   * there (once), so an invalid topology writes nothing.
   * @default - nothing
   */
  readonly beforeSynth?: () => void;
  /**
   * Runs once the stack's Terraform is written, with the output directory (the mesh's primary control-plane
   * stack writes the mesh manifest there).
   * @default - nothing
   */
  readonly afterSynth?: (stack: TerraformStack, outdir: string) => void;
}

/** Props every meshform stack takes. */
export interface MeshStackProps {
  /** Where the stack keeps its Terraform state. */
  readonly backend: StackBackend;
  /**
   * What the stack's owner does around its synthesis.
   * @default - nothing
   */
  readonly hooks?: MeshStackHooks;
}

/**
 * Base of every stack meshform creates. Its datacenter creates it as a child (so `Aspects.of(mesh)` and
 * `Aspects.of(datacenter)` reach it) with every resource it holds, or with Lazy values for what depends on
 * the whole mesh. The stack applies the aspects of the scopes above it, runs its owner's hooks around
 * synthesis, and writes its own files beside its Terraform (`onSynthesized`).
 */
export abstract class MeshStack extends TerraformStack {
  private readonly hooks: MeshStackHooks;
  /** While the stack is prepared or written: the literal resource blocks handed to cdktf as placeholders. */
  private deferred?: DeferredLiteral[];
  /** Whether `addOverride` was called on the stack (its overrides may reach into any resource). */
  private overridden = false;
  /** While cdktf writes the stack's file: where `toTerraform` leaves its literal blocks for `writeLiteralBlocks`. */
  private streamed?: DeferredLiteral[];

  protected constructor(scope: Construct, id: string, props: MeshStackProps) {
    super(scope, id);
    // Annotations in the manifest carry no stack trace (absolute paths): output is the same on every machine.
    this.node.setContext(DISABLE_STACK_TRACE_IN_METADATA, true);
    this.hooks = props.hooks ?? {};
    props.backend.bind(this, id);
    Aspects.of(this).add(new AncestorAspects(this));
    recordDependenciesByName(this.node.root);
    const inner = this.synthesizer;
    this.synthesizer = {
      synthesize: (session: ISynthesisSession) => {
        // cdktf writes the stack with its literal blocks as placeholders; they are written in, one at a time
        const streamed: DeferredLiteral[] = [];
        this.streamed = streamed;
        try {
          withShortTokenStacks(() => inner.synthesize(session));
        } finally {
          this.streamed = undefined;
        }
        if (streamed.length > 0) {
          const file = path.join(session.outdir, session.manifest.forStack(this).synthesizedStackPath);
          writeLiteralBlocks(file, streamed);
        }
        this.onSynthesized(session);
        this.hooks.afterSynth?.(this, session.outdir);
      },
    };
  }

  /** Writes files of the stack beside its Terraform (host bundles, rendered boot files); none by default. */
  protected onSynthesized(_session: ISynthesisSession): void {}

  public override prepareStack(): void {
    this.hooks.beforeSynth?.();
    // resolving creates tokens: their stacks are only for cdktf's error messages
    withShortTokenStacks(() => this.deferringLiterals(() => super.prepareStack()));
  }

  public override toTerraform(): any {
    const deferred: DeferredLiteral[] = [];
    const tf = this.deferringLiterals(() => super.toTerraform(), deferred);
    if (this.streamed) {
      // cdktf is writing the stack's file (what the last call returns): the blocks go into it afterwards
      this.streamed.splice(0, this.streamed.length);
      for (const d of deferred) this.streamed.push(d);
      return tf;
    }
    for (const d of deferred) {
      if (tf.resource?.[d.type]?.[d.id] !== d.placeholder)
        throw new Error(`meshform: ${d.type}.${d.id} was changed while its stack was written`);
      tf.resource[d.type][d.id] = copyLiteral(d.block);
    }
    return tf;
  }

  public override addOverride(path: string, value: any): void {
    this.overridden = true;
    super.addOverride(path, value);
  }

  /**
   * The placeholder `resource` of this stack hands cdktf for its whole Terraform block `block` (what its
   * `toTerraform` made, overrides included) while the stack is prepared or written, when the block is literal
   * data (`isLiteralData`: no token inside) and no override of the stack can reach into it; undefined otherwise
   * (the block goes as it is). The stack puts the block back in its resolved configuration. cdktf resolves each
   * resource three times (prepare, the resource, the whole stack) and literal data comes out of each unchanged,
   * so a large block (a config entry's manifest) is checked and copied once instead.
   * @internal
   */
  public _deferLiteralBlock(resource: TerraformResource, block: unknown): string | undefined {
    if (!this.deferred || this.overridden || !isLiteralData(block)) return undefined;
    // unguessable, so that no value of another resource can be taken for one
    const placeholder = `meshform-literal-${NONCE}-${this.deferred.length}`;
    this.deferred.push({ type: resource.terraformResourceType, id: resource.friendlyUniqueId, block, placeholder });
    return placeholder;
  }

  private deferringLiterals<T>(fn: () => T, deferred: DeferredLiteral[] = []): T {
    const previous = this.deferred;
    this.deferred = deferred;
    try {
      return fn();
    } finally {
      this.deferred = previous;
    }
  }
}

/** Tells a placeholder from any text a user could write (never written: every placeholder is replaced). */
const NONCE = randomUUID();

/** A line of cdktf's JSON (two-space indentation) whose value is a placeholder: indentation, key, placeholder, comma. */
const PLACEHOLDER_LINE = /^( *)("(?:[^"\\]|\\.)*": )"(meshform-literal-[0-9a-f-]+)"(,?)$/;

/**
 * Replaces each placeholder of `file` (a stack cdktf wrote) by its literal block, written as cdktf writes JSON,
 * one block at a time into a new file that then takes the place of the old one: the stack's whole configuration
 * is never held as one object or one string. Every placeholder must be found once.
 */
function writeLiteralBlocks(file: string, blocks: readonly DeferredLiteral[]): void {
  const byPlaceholder = new Map(blocks.map((b) => [b.placeholder, b]));
  const text = fs.readFileSync(file, 'utf8');
  const next = `${file}.meshform-tmp`;
  const fd = fs.openSync(next, 'w');
  try {
    let pending = '';
    let written = 0;
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      const m = PLACEHOLDER_LINE.exec(line);
      const block = m ? byPlaceholder.get(m[3]!) : undefined;
      pending += i > 0 ? '\n' : '';
      if (m && block) {
        byPlaceholder.delete(m[3]!);
        pending += `${m[1]}${m[2]}${stableJson(block.block, m[1]!.length / 2)}${m[4]}`;
        written++;
      } else {
        pending += line;
      }
      if (pending.length > 1 << 20) {
        fs.writeSync(fd, pending);
        pending = '';
      }
    }
    fs.writeSync(fd, pending);
    if (written !== blocks.length)
      throw new Error(`meshform: ${file}: ${blocks.length - written} resource blocks were not found to write`);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(next, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(next, file);
}

/** A resource's literal Terraform block, handed to cdktf as a placeholder while its stack is written. */
interface DeferredLiteral {
  readonly type: string;
  readonly id: string;
  readonly block: unknown;
  readonly placeholder: string;
}

/**
 * cdktf invokes the aspects of a stack and of the constructs below it only (`invokeAspects(stack)` in
 * cdktf's synthesizer), so an aspect added to a scope above a stack (the app, the mesh, a datacenter) would
 * reach none of the stack's resources. Every meshform stack carries this aspect, which applies those too,
 * outermost scope first, each aspect once.
 */
class AncestorAspects implements IAspect {
  constructor(private readonly stack: TerraformStack) {}

  public visit(node: IConstruct): void {
    const own = Aspects.of(this.stack).all;
    const inherited = this.stack.node.scopes.slice(0, -1).flatMap((scope) => Aspects.of(scope).all);
    for (const aspect of new Set(inherited)) if (!own.includes(aspect)) aspect.visit(node);
  }
}

const NAMED = Symbol.for('meshform.dependenciesByName');

/**
 * cdktf's manifest lists a stack's dependencies by construct path, while cdktf's CLI (deploy order, `cdktf
 * deploy <stack>`) and meshform look stacks up by name, the stack's construct id: the two are the same only
 * for stacks directly under the app (hashicorp/terraform-cdk#2976). meshform's stacks live under their
 * datacenter, so the app's manifest names every dependency by its stack's name.
 */
function recordDependenciesByName(root: IConstruct): void {
  if (!App.isApp(root)) return;
  const manifest = root.manifest as App['manifest'] & { [NAMED]?: true };
  if (manifest[NAMED]) return;
  Object.defineProperty(manifest, NAMED, { value: true });
  const build = manifest.buildManifest.bind(manifest);
  manifest.buildManifest = () => {
    const built = build();
    const names = new Map(
      root.node
        .findAll()
        .filter((c): c is TerraformStack => TerraformStack.isStack(c))
        .map((s) => [s.node.path, s.node.id]),
    );
    for (const entry of Object.values(built.stacks)) {
      (entry as { dependencies: string[] }).dependencies = entry.dependencies.map((d) => names.get(d) ?? d);
    }
    return built;
  };
}
