import type { MeshManifest } from '../constructs/private/mesh-manifest';
import { MESHFORM, style } from './output';

/** What the secret store did for a mesh during this run. */
export interface StoreStatus {
  readonly mesh: string;
  readonly created: boolean;
  readonly directory: string;
  readonly roots: readonly { readonly id: string; readonly fingerprint: string; readonly unattended: boolean }[];
  /** What the CA reconciliation issued (and its warnings). */
  readonly certificates: readonly string[];
}

/** The human summary of a synthesis: stacks in deploy order, datacenters and what each installs. */
export function renderSynthSummary(
  meshes: readonly MeshManifest[],
  outdir: string,
  stores: readonly StoreStatus[],
  dependencies: { readonly [stack: string]: readonly string[] },
): string {
  const out: string[] = [];
  for (const mesh of meshes) {
    out.push(
      style.bold(`mesh ${mesh.mesh}`) +
        ` — Consul ${mesh.consulVersion}, consul-k8s chart ${mesh.chartVersion}, domain ${mesh.domain}, ` +
        `${mesh.datacenters.length} datacenter${mesh.datacenters.length === 1 ? '' : 's'}, synthesized into ${outdir}`,
    );
    out.push('');
    out.push(style.bold('Stacks in deploy order') + style.dim(" (cdktf deploy '*' follows the recorded dependencies)"));
    const byStack = new Map(
      mesh.datacenters.flatMap((dc) => dc.stacks.map((s) => [s.name, { dc, state: s.state }] as const)),
    );
    const width = Math.max(...mesh.deployOrder.map((s) => s.length));
    mesh.deployOrder.forEach((stack, i) => {
      const entry = byStack.get(stack)!;
      const after = dependencies[stack]?.length ? `after ${dependencies[stack]!.join(', ')}` : 'first';
      out.push(
        `  ${i + 1}. ${style.cyan(stack.padEnd(width))}  ${entry.dc.name}${entry.dc.primary ? ' (primary)' : ''}  ` +
          style.dim(`${after}; state: ${entry.state}`),
      );
    });
    out.push('');
    out.push(style.bold('Datacenters'));
    for (const dc of mesh.datacenters) {
      out.push(`  ${style.bold(dc.name)} — ${dc.primary ? 'primary, ' : ''}${dc.platform} on ${dc.cloud}`);
      for (const line of dc.installs) out.push(`    - ${line}`);
    }
    out.push('');
    out.push(style.bold('Federation') + style.dim(' (WAN, through mesh gateways)'));
    if (mesh.federation.length === 0) out.push('  single datacenter: nothing to federate');
    for (const link of mesh.federation) {
      out.push(`  ${link.from} → ${link.to} via ${link.primaryGateways.join(', ')}`);
    }
    const store = stores.find((s) => s.mesh === mesh.mesh);
    if (store) {
      out.push('');
      out.push(style.bold('Secrets'));
      out.push(`  ${store.created ? style.green('created') : 'using'} secret store ${store.directory}`);
      out.push(`  certificates: ${mesh.ca.description}`);
      for (const root of store.roots)
        out.push(style.dim(`    root ${root.id} SHA-256 ${root.fingerprint.slice(0, 23)}…`));
      for (const line of store.certificates) out.push(`    ${line}`);
      out.push(`  Terraform variables: ${mesh.secretVariables.join(', ')}`);
      out.push(
        `  before deploying: ${style.cyan(`${MESHFORM} deploy`)}, or ${style.cyan(`eval "$(${MESHFORM} secrets env)"`)} then ${style.cyan("npx cdktf deploy '*'")}`,
      );
    }
    if (mesh.warnings.length > 0) {
      out.push('');
      out.push(style.yellow(style.bold('Warnings')));
      for (const w of mesh.warnings) out.push(`  ${style.yellow(w.message)}`);
    }
    out.push('');
  }
  return out.join('\n');
}

/** `meshform synth --json`: what was synthesized, per mesh, and what the secret store did. */
export interface SynthDocument {
  /** The output directory, relative to the project. */
  readonly outdir: string;
  readonly meshes: readonly {
    readonly mesh: string;
    readonly consulVersion: string;
    readonly chartVersion: string;
    readonly domain: string;
    readonly primary: string;
    /** In deploy order, each with what it deploys after and where its state is. */
    readonly stacks: readonly {
      readonly stack: string;
      readonly datacenter: string;
      readonly dependsOn: readonly string[];
      readonly state: string;
    }[];
    readonly datacenters: readonly {
      readonly name: string;
      readonly primary: boolean;
      readonly platform: string;
      readonly cloud: string;
      readonly installs: readonly string[];
    }[];
    readonly federation: readonly { readonly from: string; readonly to: string; readonly via: readonly string[] }[];
    readonly secretStore?: {
      readonly directory: string;
      readonly created: boolean;
      readonly roots: StoreStatus['roots'];
      /** What the CA reconciliation issued, and its warnings (plain text). */
      readonly certificates: readonly string[];
    };
    readonly secretVariables: readonly string[];
    readonly warnings: MeshManifest['warnings'];
  }[];
  /** Warnings cdktf recorded that are not meshform's. */
  readonly annotations: readonly { readonly stack: string; readonly level: string; readonly message: string }[];
}

/** The synthesis as `meshform synth --json` prints it. */
export function synthDocument(
  meshes: readonly MeshManifest[],
  outdir: string,
  stores: readonly StoreStatus[],
  dependencies: { readonly [stack: string]: readonly string[] },
  annotations: SynthDocument['annotations'],
): SynthDocument {
  const plain = (t: string) => t.replace(/\u001b\[[0-9;]*m/g, '');
  return {
    outdir,
    meshes: meshes.map((mesh) => {
      const store = stores.find((s) => s.mesh === mesh.mesh);
      const byStack = new Map(
        mesh.datacenters.flatMap((dc) => dc.stacks.map((s) => [s.name, { dc, state: s.state }] as const)),
      );
      return {
        mesh: mesh.mesh,
        consulVersion: mesh.consulVersion,
        chartVersion: mesh.chartVersion,
        domain: mesh.domain,
        primary: mesh.primary,
        stacks: mesh.deployOrder.map((stack) => ({
          stack,
          datacenter: byStack.get(stack)!.dc.name,
          dependsOn: dependencies[stack] ?? [],
          state: byStack.get(stack)!.state,
        })),
        datacenters: mesh.datacenters.map((dc) => ({
          name: dc.name,
          primary: dc.primary,
          platform: dc.platform,
          cloud: dc.cloud,
          installs: dc.installs,
        })),
        federation: mesh.federation.map((l) => ({ from: l.from, to: l.to, via: l.primaryGateways })),
        ...(store
          ? {
              secretStore: {
                directory: store.directory,
                created: store.created,
                roots: store.roots,
                certificates: store.certificates.map(plain),
              },
            }
          : {}),
        secretVariables: mesh.secretVariables,
        warnings: mesh.warnings,
      };
    }),
    annotations,
  };
}
