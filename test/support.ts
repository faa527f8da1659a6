import * as fs from 'node:fs';
import * as path from 'node:path';
import { vi } from 'vitest';
import { parse } from 'yaml';
import { main } from '../cli/main';
import { App } from '../constructs/private/engine';
import {
  AwsVmHostsOptions,
  HostRole,
  KubernetesCluster,
  KubernetesDatacenter,
  MachineImage,
  Mesh,
  Service,
  VmDatacenter,
  VmHosts,
  VmNetwork,
} from '../index';
import type { MeshManifest } from '../constructs/private/mesh-manifest';

/** Root of the repository. */
export const REPO = path.resolve(__dirname, '..');

export { removeTempDirs, tempDir } from './temp-dirs';
import { tempDir } from './temp-dirs';

/** A synthesized Terraform JSON document. */
export interface StackJson {
  readonly terraform: {
    backend?: { [kind: string]: { [key: string]: unknown } };
    cloud?: unknown;
    required_providers?: unknown;
  };
  readonly provider?: { [name: string]: unknown[] };
  readonly resource?: { [type: string]: { [id: string]: { [key: string]: unknown } } };
  readonly variable?: { [name: string]: { [key: string]: unknown } };
  readonly output?: { [name: string]: { [key: string]: unknown } };
  readonly data?: { [type: string]: { [id: string]: { [key: string]: unknown } } };
}

/** What a synthesis produced. */
export interface Synthesized {
  readonly outdir: string;
  readonly manifest: {
    stacks: { [name: string]: { dependencies: string[]; annotations: { level: string; message: string }[] } };
  };
  stackNames(): string[];
  stack(name: string): StackJson;
  mesh(name: string): MeshManifest;
  /** Every file under the output directory, relative path -> content. */
  files(): Map<string, string>;
}

/** Builds an app with `define` and synthesizes it into a fresh directory. */
export function synth(define: (app: App) => void, outdir: string = path.join(tempDir(), 'cdktf.out')): Synthesized {
  fs.mkdirSync(path.dirname(outdir), { recursive: true });
  const app = new App({ outdir, stackTraces: false });
  define(app);
  app.synth();
  return readOutput(outdir);
}

/** Reads a synthesized output directory. */
export function readOutput(outdir: string): Synthesized {
  const manifest = JSON.parse(fs.readFileSync(path.join(outdir, 'manifest.json'), 'utf8')) as Synthesized['manifest'];
  return {
    outdir,
    manifest,
    stackNames: () => Object.keys(manifest.stacks),
    stack: (name) => {
      const file = path.join(outdir, 'stacks', name, 'cdk.tf.json');
      if (!fs.existsSync(file))
        throw new Error(`no stack ${name} in ${outdir}: ${Object.keys(manifest.stacks).join(', ')}`);
      return JSON.parse(fs.readFileSync(file, 'utf8')) as StackJson;
    },
    mesh: (name) => JSON.parse(fs.readFileSync(path.join(outdir, 'meshform', `${name}.json`), 'utf8')) as MeshManifest,
    files: () => readTree(outdir),
  };
}

/** Every file under `dir`, relative path -> content. */
export function readTree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else out.set(path.relative(dir, p), fs.readFileSync(p, 'utf8'));
    }
  };
  walk(dir);
  return out;
}

/** The resources of one type in a stack, as a list of bodies. */
export function resources(stack: StackJson, type: string): { [key: string]: unknown }[] {
  return Object.values(stack.resource?.[type] ?? {});
}

/** The single resource of a type in a stack (fails when there is not exactly one). */
export function onlyResource(stack: StackJson, type: string): { [key: string]: unknown } {
  const found = resources(stack, type);
  if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
  return found[0]!;
}

/** The Helm values of the stack's consul release, parsed. */
export function helmValues(stack: StackJson): any {
  const release = onlyResource(stack, 'helm_release');
  const values = release.values as string[];
  if (values.length !== 1) throw new Error(`expected one values document, found ${values.length}`);
  return parse(values[0]!);
}

/** Runs `fn`, expecting it to throw; returns the error's message. */
export function thrownMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error, none was thrown');
}

/** tsx's CLI: a launcher that starts a second node process with tsx's loader (as `npx tsx` does). */
export const TSX = path.join(REPO, 'node_modules', 'tsx', 'dist', 'cli.mjs');

/** tsx's loader, for `node --import`: a TypeScript program in one process, without the launcher. */
export const TSX_LOADER = path.join(REPO, 'node_modules', 'tsx', 'dist', 'loader.mjs');

/** How test projects run their TypeScript app (cdktf.json's "app", followed by the program's file). */
export const RUN_TS = `node --import ${TSX_LOADER}`;

/** The meshform command as users run it (`npx meshform`): one process, no launcher. */
export const BIN = path.join(REPO, 'bin', 'meshform.js');

/** Waits until `condition` holds, polling; fails with `what` after `timeoutMs` (a bound, not a timing assertion). */
export async function until(what: string, condition: () => boolean, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** GIVEN helper: a project directory whose cdktf.json runs `program` (a .ts file path). */
export function project(program: string): string {
  const dir = tempDir('meshform-project-');
  fs.writeFileSync(
    path.join(dir, 'cdktf.json'),
    JSON.stringify({ language: 'typescript', app: `${RUN_TS} ${program}` }),
  );
  return dir;
}

/** Runs the CLI in-process, capturing stdout. */
export function run(args: string[]): { code: number; stdout: string } {
  let stdout = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  });
  try {
    const code = main(args);
    if (typeof code !== 'number') throw new Error(`${args[0]} is asynchronous: use runAsync`);
    return { code, stdout };
  } finally {
    spy.mockRestore();
  }
}

/** Runs an asynchronous CLI command (plan, deploy) in-process, capturing stdout. */
export async function runAsync(args: string[]): Promise<{ code: number; stdout: string }> {
  let stdout = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  });
  try {
    const code = await main(args);
    return { code, stdout };
  } finally {
    spy.mockRestore();
  }
}

/** The AMI id the VM tests use. */
export const TEST_AMI = 'ami-0123456789abcdef0';

/** GIVEN helper: mesh `m` with Kubernetes primary `k` (gateway mgw.example.com). */
export function kubernetesPrimary(app: App): Mesh {
  const mesh = new Mesh(app, 'm');
  new KubernetesDatacenter(mesh, 'k', {
    primary: true,
    cluster: KubernetesCluster.fromKubeconfig({ context: 'k' }),
    meshGateway: { address: 'mgw.example.com' },
  });
  return mesh;
}

/** GIVEN helper: AWS VM hosts in eu-west-1, a new 10.20.0.0/16 VPC and TEST_AMI, with overridable options. */
export function awsVmHosts(options: Partial<AwsVmHostsOptions> = {}): VmHosts {
  return VmHosts.onAws({
    region: 'eu-west-1',
    network: VmNetwork.newVpc({ cidr: '10.20.0.0/16' }),
    machineImage: MachineImage.fromId(TEST_AMI),
    ...options,
  });
}

/** Three server hosts, a gateway host and a client host running `services`, on 10.0.0.0/24 (own hosts). */
export function ownHosts(services: readonly Service[]): VmHosts {
  return VmHosts.existing([
    { name: 's1', address: '10.0.0.1', role: HostRole.SERVER },
    { name: 's2', address: '10.0.0.2', role: HostRole.SERVER },
    { name: 's3', address: '10.0.0.3', role: HostRole.SERVER },
    { name: 'g1', address: '10.0.0.4', role: HostRole.MESH_GATEWAY },
    { name: 'c1', address: '10.0.0.5', role: HostRole.CLIENT, services },
  ]);
}

/** A VM primary `vms` on EC2 with a declared gateway address, running `api`. */
export function awsVmPrimary(mesh: Mesh): VmDatacenter {
  const vms = new VmDatacenter(mesh, 'vms', {
    primary: true,
    meshGateway: { address: 'mgw.vms.example.com' },
    hosts: awsVmHosts(),
  });
  new Service(mesh, 'api', { port: 8080, datacenters: [vms] });
  return vms;
}
