import { ChildProcess, ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { childEnvironment } from './environment';

/** A Terraform binary and how to reach providers. */
export interface TerraformEnvironment {
  /** The terraform binary. */
  readonly binary: string;
  /** Version, e.g. `1.11.4`. */
  readonly version: string;
  /** A filesystem provider mirror, when one is used. */
  readonly mirror?: string;
}

/** Why Terraform checks cannot run here, or the environment to run them in. */
export type TerraformAvailability =
  | { readonly ok: true; readonly env: TerraformEnvironment }
  | { readonly ok: false; readonly reason: string };

const MIRROR_CANDIDATES = [
  '/opt',
  '/usr/share',
  '/usr/local/share',
  '/var/lib',
  path.join(os.homedir(), '.terraform.d'),
];

/** Finds a filesystem mirror holding hashicorp/aws (`<root>/registry.terraform.io/hashicorp/aws/<version>/...`). */
export function findProviderMirror(provider = 'aws'): string | undefined {
  const fromEnv = process.env.MESHFORM_TF_PROVIDER_MIRROR;
  if (fromEnv)
    return fs.existsSync(path.join(fromEnv, 'registry.terraform.io', 'hashicorp', provider)) ? fromEnv : undefined;
  const visit = (dir: string, depth: number): string | undefined => {
    if (fs.existsSync(path.join(dir, 'registry.terraform.io', 'hashicorp', provider))) return dir;
    if (depth === 0) return undefined;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return undefined;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (!e.isDirectory() || e.name.startsWith('.') || e.name === 'node_modules' || e.name === 'proc') continue;
      const found = visit(path.join(dir, e.name), depth - 1);
      if (found) return found;
    }
    return undefined;
  };
  for (const root of MIRROR_CANDIDATES) {
    const found = visit(root, 3);
    if (found) return found;
  }
  return undefined;
}

/** Whether terraform (and, offline, a provider mirror) is available. */
export function terraformAvailability(options: { readonly offline: boolean }): TerraformAvailability {
  const binary = process.env.MESHFORM_TERRAFORM ?? 'terraform';
  const probe = spawnSync(binary, ['version', '-json'], {
    encoding: 'utf8',
    env: childEnvironment({ TF_CLI_CONFIG_FILE: '/dev/null' }),
  });
  if (probe.error || probe.status !== 0) return { ok: false, reason: `terraform is not on PATH (${binary})` };
  const version = (JSON.parse(probe.stdout) as { terraform_version: string }).terraform_version;
  if (!options.offline) return { ok: true, env: { binary, version } };
  const mirror = findProviderMirror();
  if (!mirror)
    return { ok: false, reason: 'no filesystem provider mirror with hashicorp/aws (set MESHFORM_TF_PROVIDER_MIRROR)' };
  return { ok: true, env: { binary, version, mirror } };
}

/** Providers a synthesized stack uses (the keys of its `provider` block). */
export function stackProviders(stackJson: { provider?: { [name: string]: unknown } }): string[] {
  return Object.keys(stackJson.provider ?? {}).sort();
}

/** Options of a run in a working copy of a stack. */
export interface WorkspaceOptions {
  /** Fake credentials, the AWS provider's skip flags and a local backend: plan without any cloud. */
  readonly offline: boolean;
  /** Shared provider plugin cache directory. */
  readonly pluginCache?: string;
  /**
   * Offline copy that keeps the stack's own AWS providers (synthesized in endpoint mode, for an emulator) and
   * takes credentials from the environment (default "test"), instead of the fake-credentials override.
   */
  readonly keepProviders?: boolean;
  /** Extra variables (`-var name=value`); secrets are passed through the environment instead. */
  readonly environment?: { readonly [name: string]: string };
  /** Offline: a state file to start from (a copy of the stack's local state), so the plan compares with it. */
  readonly initialState?: string;
  /**
   * Offline: keep what `terraform init` installed in the working copy from one run to the next while nothing it
   * depends on changed (see `initKey`); every other file of the copy is still made afresh.
   */
  readonly keepInit?: boolean;
}

/** Where an offline copy records what its `terraform init` was run for (`initKey`). */
const INIT_MARKER = '.meshform-init';
/** What `terraform init` leaves in a working copy: kept between runs while its key is unchanged. */
const INIT_FILES = ['.terraform', '.terraform.lock.hcl', INIT_MARKER];

/**
 * Where Terraform runs for a synthesized stack: offline, in a copy of the stack (fake credentials, a local
 * state, the provider mirror), never touching the stack's own directory or state; online (`workRoot`
 * undefined), in the stack's directory itself, with the user's credentials and the stack's real backend.
 */
export class StackWorkspace {
  /** Directory Terraform runs in. */
  public readonly dir: string;

  constructor(
    public readonly stackDir: string,
    public readonly env: TerraformEnvironment,
    private readonly options: WorkspaceOptions,
    workRoot: string | undefined,
  ) {
    if (workRoot === undefined) {
      if (options.offline) throw new Error('an offline workspace needs a work directory');
      this.dir = stackDir;
      return;
    }
    this.dir = path.join(workRoot, path.basename(stackDir));
    const stackText = fs.readFileSync(path.join(stackDir, 'cdk.tf.json'), 'utf8');
    const stack = JSON.parse(stackText) as StackConfiguration;
    const key = options.offline && options.keepInit ? this.initKey(stack) : undefined;
    this.initialized = key !== undefined && this.keepInitialized(key);
    if (!this.initialized) fs.rmSync(this.dir, { recursive: true, force: true });
    // an offline copy holds a copy of the stack's state: private to the user, like the cache it is in
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(this.dir, 'cdk.tf.json'), stackText);
    if (options.offline) {
      const override: { terraform: object; provider?: object } = {
        // not ./terraform.tfstate: Terraform would treat a state there as one to migrate into the backend
        terraform: { backend: { local: { path: path.join(this.dir, 'meshform.tfstate') } } },
      };
      if (stack.provider?.aws && !options.keepProviders) {
        override.provider = {
          aws: [
            {
              access_key: 'meshform-offline',
              secret_key: 'meshform-offline',
              skip_credentials_validation: true,
              skip_requesting_account_id: true,
              skip_metadata_api_check: 'true',
              skip_region_validation: true,
            },
          ],
        };
      }
      if (stack.terraform?.cloud) {
        // A cloud block cannot be overridden into a backend; drop it from the copy.
        delete stack.terraform.cloud;
        fs.writeFileSync(path.join(this.dir, 'cdk.tf.json'), JSON.stringify(stack, null, 2));
      }
      fs.writeFileSync(path.join(this.dir, 'zz_meshform_override.tf.json'), JSON.stringify(override, null, 2));
      if (options.initialState && fs.existsSync(options.initialState)) {
        fs.copyFileSync(options.initialState, path.join(this.dir, 'meshform.tfstate'));
        fs.chmodSync(path.join(this.dir, 'meshform.tfstate'), 0o600);
      }
      const cli = path.join(this.dir, '.terraformrc');
      fs.writeFileSync(
        cli,
        (this.env.mirror
          ? `provider_installation {\n  filesystem_mirror {\n    path = ${JSON.stringify(this.env.mirror)}\n  }\n}\n`
          : '') + (options.pluginCache ? `plugin_cache_dir = ${JSON.stringify(options.pluginCache)}\n` : ''),
      );
    }
  }

  /**
   * True when the copy kept what an earlier `terraform init` installed for exactly what this run needs (offline,
   * `keepInit`): the plan can run without init. `initDone` records a new init.
   */
  public readonly initialized: boolean = false;

  /**
   * What `terraform init` depends on, as a digest: the Terraform binary and version, the provider installation
   * settings (mirror, plugin cache), the backend and provider requirements of the copy (its `terraform` block
   * and the override), the modules it calls and the providers its resources imply.
   */
  private initKey(stack: StackConfiguration): string {
    const prefixes = (blocks?: { [type: string]: unknown }) =>
      Object.keys(blocks ?? {}).map((type) => type.split('_')[0]!);
    const { cloud: _cloud, ...terraform } = stack.terraform ?? {};
    return createHash('sha256')
      .update(
        JSON.stringify({
          binary: this.env.binary,
          version: this.env.version,
          mirror: this.env.mirror ?? null,
          pluginCache: this.options.pluginCache ?? null,
          keepProviders: this.options.keepProviders ?? false,
          dir: this.dir,
          terraform,
          providers: Object.keys(stack.provider ?? {}).sort(),
          modules: stack.module ?? {},
          implied: [...new Set([...prefixes(stack.resource), ...prefixes(stack.data)])].sort(),
        }),
      )
      .digest('hex');
  }

  /**
   * Keeps the copy's init (and removes every other file it holds: the last run's configuration, state copy,
   * saved plan and log) when it was made for `key` and its providers are still installed; false otherwise.
   */
  private keepInitialized(key: string): boolean {
    this.pendingInitKey = key;
    try {
      if (fs.readFileSync(path.join(this.dir, INIT_MARKER), 'utf8') !== key) return false;
      if (!installedProvidersPresent(path.join(this.dir, '.terraform', 'providers'))) return false;
    } catch {
      return false;
    }
    for (const entry of fs.readdirSync(this.dir)) {
      if (!INIT_FILES.includes(entry)) fs.rmSync(path.join(this.dir, entry), { recursive: true, force: true });
    }
    return true;
  }

  private pendingInitKey: string | undefined;

  /** Records that `terraform init` succeeded in this copy, so a later run with the same key skips it. */
  public initDone(): void {
    if (this.pendingInitKey) fs.writeFileSync(path.join(this.dir, INIT_MARKER), this.pendingInitKey, { mode: 0o600 });
  }

  /** Forgets the copy's init (its providers or lock turned out not to be what the plan needs). */
  public forgetInit(): void {
    fs.rmSync(path.join(this.dir, INIT_MARKER), { force: true });
  }

  /**
   * The files of this workspace that hold state or secret values, wherever Terraform put them: the local
   * backend's state (`terraform.<stack>.tfstate` beside cdktf.out) and its backup, the default local state,
   * the backend settings Terraform caches (`.terraform/terraform.tfstate`), saved plans.
   */
  public stateFiles(): string[] {
    const files = ['terraform.tfstate', 'meshform.tfstate', path.join('.terraform', 'terraform.tfstate')];
    // (an offline copy's backend is overridden to meshform.tfstate: its configuration's path is not where it writes)
    if (!this.options.offline)
      try {
        const json = JSON.parse(fs.readFileSync(path.join(this.dir, 'cdk.tf.json'), 'utf8')) as {
          terraform?: { backend?: { local?: { path?: string } } };
        };
        const local = json.terraform?.backend?.local;
        if (local) files.push(local.path ?? 'terraform.tfstate');
      } catch {
        // no configuration (yet): only the default places
      }
    const states = files.flatMap((f) => [path.resolve(this.dir, f), `${path.resolve(this.dir, f)}.backup`]);
    const plans = fs.existsSync(this.dir)
      ? fs
          .readdirSync(this.dir)
          .filter((f) => f.endsWith('.tfplan'))
          .map((f) => path.join(this.dir, f))
      : [];
    return [...states, ...plans];
  }

  /** Makes every state file and saved plan of the workspace readable by the user only (0600). */
  private protectStateFiles(): void {
    for (const file of this.stateFiles()) {
      try {
        if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
      } catch {
        // absent (or not ours to change: Terraform reports what it cannot read)
      }
    }
  }

  private environment(): NodeJS.ProcessEnv {
    // the user's environment without meshform's own secrets (a root's passphrase): providers run in it
    const env = childEnvironment({
      ...this.options.environment,
      TF_IN_AUTOMATION: '1',
      TF_INPUT: '0',
      CHECKPOINT_DISABLE: '1',
    });
    // Go's garbage collector, for Terraform and its providers (they inherit it), unless the user chose: the AWS
    // provider spends a fifth of a plan's CPU collecting at the default GOGC=100 (measured on the default
    // example's VM stack: 9.6 s CPU and 320 MB at 100, 7.4 s and 380 MB at 200, 7.4 s and 500-590 MB at 400).
    // 200 takes most of the saving for 60 MB more per process.
    if (env.GOGC === undefined && env.GOMEMLIMIT === undefined) env.GOGC = '200';
    if (this.options.offline) {
      env.TF_CLI_CONFIG_FILE = path.join(this.dir, '.terraformrc');
      env.AWS_ACCESS_KEY_ID = this.options.keepProviders
        ? (process.env.AWS_ACCESS_KEY_ID ?? 'test')
        : 'meshform-offline';
      env.AWS_SECRET_ACCESS_KEY = this.options.keepProviders
        ? (process.env.AWS_SECRET_ACCESS_KEY ?? 'test')
        : 'meshform-offline';
      env.AWS_EC2_METADATA_DISABLED = 'true';
    }
    // the cache this workspace was given is the one Terraform uses (TF_PLUGIN_CACHE_DIR from the caller's
    // environment would otherwise take precedence over the offline configuration's plugin_cache_dir, and a kept
    // init would be checked against a cache Terraform never used)
    if (this.options.pluginCache) env.TF_PLUGIN_CACHE_DIR = this.options.pluginCache;
    if (this.options.pluginCache) fs.mkdirSync(this.options.pluginCache, { recursive: true });
    return env;
  }

  /**
   * Runs terraform with `args`; resolves with its exit code and output (never rejects on a non-zero exit).
   * Terraform runs in its own process group, so an interrupt reaches it once, through `interruptTerraform`
   * (a terminal's Ctrl-C goes to meshform, which forwards it). Each run is logged to `meshform-terraform.log`
   * in the working directory, except the output of `show` and `state`: they hold the variables' values and
   * the state, secrets included.
   */
  public run(args: readonly string[], timeoutMs = 600_000): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const ownGroup = forwarding > 0;
      const env = this.environment();
      this.protectStateFiles();
      // Terraform writes states, their backups and saved plans with the process's umask (0644 under the usual
      // 022): it runs under 077, so whatever it creates is the user's only
      const umask = process.umask(0o077);
      let child: ChildProcessWithoutNullStreams;
      try {
        child = spawn(this.env.binary, [...args], { cwd: this.dir, env, detached: ownGroup });
      } finally {
        process.umask(umask);
      }
      running.set(child, ownGroup);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => signalGroup(child, 'SIGTERM'), timeoutMs);
      const finish = (code: number | null, error?: Error) => {
        clearTimeout(timer);
        running.delete(child);
        this.protectStateFiles();
        const logged =
          args[0] === 'show' || args[0] === 'state' ? '(output not logged: it holds secret values)\n' : stdout;
        if (error) stderr += `${error.message}\n`;
        fs.appendFileSync(
          path.join(this.dir, 'meshform-terraform.log'),
          `$ terraform ${args.join(' ')}\n${logged}${stderr}\n`,
          { mode: 0o600 },
        );
        resolve({ code: code ?? 1, stdout, stderr });
      };
      child.on('error', (e) => finish(1, e));
      child.on('close', (code) => finish(code));
    });
  }
}

/** The parts of a synthesized stack a working copy reads. */
interface StackConfiguration {
  terraform?: { backend?: object; cloud?: object; required_providers?: object };
  provider?: { [name: string]: unknown };
  module?: { [name: string]: unknown };
  resource?: { [type: string]: unknown };
  data?: { [type: string]: unknown };
}

/** True when every provider `terraform init` installed (a copy or a link into the plugin cache) is still there. */
function installedProvidersPresent(dir: string): boolean {
  let found = false;
  const visit = (d: string, depth: number): boolean => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      // <host>/<namespace>/<type>/<version>/<os_arch>: the last a directory, or a link to one in the cache
      if (depth === 4) {
        if (!fs.existsSync(full)) return false;
        found = true;
      } else if (e.isDirectory() && !visit(full, depth + 1)) return false;
    }
    return true;
  };
  return visit(dir, 0) && found;
}

/** Terraform processes running now, each with whether it leads its own process group. */
const running = new Map<ChildProcess, boolean>();

/** How many runs forward interrupts to Terraform now (a plan or deploy's RunGuard). */
let forwarding = 0;

/**
 * Turns on (or back off) forwarding interrupts: while on, each Terraform runs in its own process group, so a
 * terminal's Ctrl-C reaches it only through `interruptTerraform`, exactly once. While off (the integration
 * tier, tests), Terraform shares meshform's process group, as any child does.
 */
export function forwardInterrupts(on: boolean): void {
  forwarding = Math.max(0, forwarding + (on ? 1 : -1));
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    if (running.get(child)) process.kill(-child.pid, signal);
    else child.kill(signal);
  } catch {
    // already gone
  }
}

/**
 * Interrupts every running Terraform as a terminal's Ctrl-C would (SIGINT to its process group): the first
 * makes it stop gracefully (finish the operations in flight, save its state, release its lock), a second
 * one stops it at once. Returns how many were running.
 */
export function interruptTerraform(): number {
  for (const child of running.keys()) signalGroup(child, 'SIGINT');
  return running.size;
}

/** `TF_VAR_*` values for every variable of a stack that has no default and a value in `values` (its secrets). */
export function variableEnvironment(
  stackJson: { variable?: { [name: string]: { default?: unknown } } },
  values: { [name: string]: string },
): {
  [env: string]: string;
} {
  const env: { [env: string]: string } = {};
  for (const [name, variable] of Object.entries(stackJson.variable ?? {})) {
    if (variable.default === undefined && values[name] !== undefined) env[`TF_VAR_${name}`] = values[name]!;
  }
  return env;
}

/** A mutex: `terraform init` runs one at a time, because the shared plugin cache is not safe for concurrent installs. */
export class Lock {
  private tail: Promise<void> = Promise.resolve();
  public run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

/**
 * Runs `jobs` with at most `limit` at a time, starting them in the order of `order` (indices into `jobs`; default
 * the list's order); the results are in the order of the list.
 */
export async function pool<T>(
  jobs: readonly (() => Promise<T>)[],
  limit: number,
  order: readonly number[] = jobs.map((_, i) => i),
): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(limit, jobs.length)) }, async () => {
      while (next < order.length) {
        const i = order[next++]!;
        results[i] = await jobs[i]!();
      }
    }),
  );
  return results;
}

/**
 * What Terraform said went wrong, on one line and without its boxes: each `Error:` summary (at most
 * `maxErrors`) with the resource it names (`with aws_x.y,`), or, where it printed no error, its last lines.
 */
export function terraformError(output: string, maxErrors = 3): string {
  const lines = output
    .split('\n')
    .map((l) => l.replace(/^[│╷╵]\s?/, '').trim())
    .filter((l) => l.length > 0);
  const errors = lines.flatMap((line, i) =>
    line.startsWith('Error:') ? [lines[i + 1]?.startsWith('with ') ? `${line} ${lines[i + 1]}` : line] : [],
  );
  return (errors.length > 0 ? errors.slice(0, maxErrors) : lines.slice(-3)).join(' ');
}

/** Everything Terraform said went wrong, whole (its box drawing removed, blank runs collapsed). */
export function terraformDiagnostics(output: string): string {
  return output
    .split('\n')
    .map((l) => l.replace(/^[│╷╵]\s?/, '').trimEnd())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** A state read through Terraform: the state document, or none when the backend holds no state yet. */
export type PulledState =
  | { readonly ok: true; readonly state?: { outputs?: { [name: string]: { value?: unknown } }; resources?: unknown[] } }
  | { readonly ok: false; readonly error: string };

/**
 * Reads a stack's state from its backend with `terraform state pull` (S3 and any other backend Terraform
 * reaches with the user's credentials), in `workDir`, a scratch copy holding only the backend. The state is
 * kept in memory only.
 */
export async function pullState(
  env: TerraformEnvironment,
  backend: { readonly terraform?: object },
  workDir: string,
): Promise<PulledState> {
  fs.rmSync(workDir, { recursive: true, force: true });
  fs.mkdirSync(workDir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(workDir, 'cdk.tf.json'), JSON.stringify({ terraform: backend.terraform }, null, 2));
  const workspace = new StackWorkspace(workDir, env, { offline: false }, undefined);
  const init = await workspace.run(['init', '-input=false', '-no-color']);
  if (init.code !== 0) return { ok: false, error: terraformDiagnostics(init.stderr || init.stdout) };
  const pulled = await workspace.run(['state', 'pull']);
  if (pulled.code !== 0) return { ok: false, error: terraformDiagnostics(pulled.stderr || pulled.stdout) };
  if (pulled.stdout.trim() === '') return { ok: true };
  try {
    return { ok: true, state: JSON.parse(pulled.stdout) as Extract<PulledState, { ok: true }>['state'] };
  } catch (e) {
    return { ok: false, error: `terraform state pull printed no state document (${(e as Error).message})` };
  }
}
