/**
 * Interruptions of a plan or deploy: SIGINT, SIGTERM and SIGHUP are caught and forwarded to the running
 * Terraform (which then stops gracefully and saves its state), and the same happens when the process that
 * launched meshform goes away (`npm run`, `npx`, the tsx launcher, killed even with SIGKILL): meshform never
 * leaves itself or Terraform running behind a launcher that is gone. The run then records where it stopped
 * and exits with 128 + the signal's number.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { CliError } from './output';
import { forwardInterrupts, interruptTerraform } from './terraform';

/** What stopped the run. */
export interface Interruption {
  readonly signal: NodeJS.Signals;
  /** Why, e.g. `received SIGTERM` or `its launcher npm (pid 123) went away`. */
  readonly reason: string;
  /** The exit code the run ends with: 128 + the signal's number. */
  readonly exitCode: number;
  readonly at: string;
}

/** The run was interrupted; its exit code is 128 + the signal's number. */
export class InterruptedError extends CliError {
  constructor(
    public readonly interruption: Interruption,
    where: string,
  ) {
    super(`interrupted (${interruption.reason}) ${where}`, interruption.exitCode);
  }
}

interface ProcessInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly comm: string;
  readonly args: readonly string[];
  readonly zombie: boolean;
}

function processInfo(pid: number): ProcessInfo | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    return {
      pid,
      ppid: Number(fields[1]),
      comm: stat.slice(stat.indexOf('(') + 1, close),
      args,
      zombie: fields[0] === 'Z' || fields[0] === 'X',
    };
  } catch {
    return undefined;
  }
}

/** npm / npx (they name their process `npm run ...`, `npm exec ...`), or the tsx launcher. */
function isNodeLauncher(info: ProcessInfo): boolean {
  if (/^(npm|npx)\b/.test(info.comm) || /^(npm|npx)\b/.test(info.args[0] ?? '')) return true;
  return info.args.some((a) => /(^|\/)tsx(\/dist\/cli\.mjs)?$/.test(a) || /\/(npm|npx)-cli\.js$/.test(a));
}

/**
 * The processes that launched this one and exist only for it: npm or npx, the `sh -c` npm runs scripts
 * with, the tsx launcher. The walk stops at the first other process (a shell, a CI runner).
 */
export function launcherChain(): ProcessInfo[] {
  const chain: ProcessInfo[] = [];
  let info = processInfo(process.ppid);
  while (info && info.pid > 1) {
    const parent = processInfo(info.ppid);
    const scriptShell =
      /^(sh|dash|bash)$/.test(info.comm) && info.args[1] === '-c' && parent !== undefined && isNodeLauncher(parent);
    if (!isNodeLauncher(info) && !scriptShell) break;
    chain.push(info);
    info = parent;
  }
  return chain;
}

function gone(pid: number): boolean {
  const info = processInfo(pid);
  if (info) return info.zombie;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

const CAUGHT: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function ignoreBrokenPipe(e: NodeJS.ErrnoException): void {
  if (e.code !== 'EPIPE') throw e;
}

/** Catches interruptions for the length of one run; `stop()` puts the default handling back. */
export class RunGuard {
  /** Set once the run was interrupted. */
  public interrupted?: Interruption;
  /** Aborted when the run is interrupted (e.g. to cancel a prompt). */
  public readonly abort = new AbortController();
  private readonly handlers = new Map<NodeJS.Signals, () => void>();
  private readonly watch?: NodeJS.Timeout;

  constructor(private readonly log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)) {
    // a launcher that is gone may have held the reading end of our output: keep going to stop cleanly
    for (const stream of [process.stdout, process.stderr]) stream.on('error', ignoreBrokenPipe);
    forwardInterrupts(true);
    for (const signal of CAUGHT) {
      const handler = () => this.interrupt(signal, `received ${signal}`);
      this.handlers.set(signal, handler);
      process.on(signal, handler);
    }
    const launchers = launcherChain();
    const parent = process.ppid;
    if (launchers.length > 0) {
      this.watch = setInterval(() => {
        const dead = launchers.find((l) => gone(l.pid));
        if (dead || process.ppid !== parent) {
          const who = dead ?? launchers[0]!;
          this.interrupt('SIGTERM', `its launcher ${who.comm} (pid ${who.pid}) went away`);
        }
      }, 250);
      this.watch.unref();
    }
  }

  /** Stops the run as `signal` would: forwards an interrupt to Terraform, aborts prompts. */
  public interrupt(signal: NodeJS.Signals, reason: string): void {
    if (this.interrupted) {
      if (reason.startsWith('received')) {
        const n = interruptTerraform();
        if (n > 0) this.log(`meshform: ${signal} again: Terraform is told to stop at once`);
      }
      return;
    }
    if (this.watch) clearInterval(this.watch);
    this.interrupted = {
      signal,
      reason,
      exitCode: 128 + (os.constants.signals[signal] ?? 15),
      at: new Date().toISOString(),
    };
    const n = interruptTerraform();
    this.log(
      `meshform: interrupted (${reason})${n > 0 ? ': Terraform is told to stop; it finishes what it is doing and saves its state' : ''}`,
    );
    this.abort.abort();
  }

  /** Throws InterruptedError when the run was interrupted. */
  public check(where: string): void {
    if (this.interrupted) throw new InterruptedError(this.interrupted, where);
  }

  /** Removes the handlers and the launcher watch. */
  public stop(): void {
    if (this.watch) clearInterval(this.watch);
    for (const [signal, handler] of this.handlers) process.off(signal, handler);
    for (const stream of [process.stdout, process.stderr]) stream.off('error', ignoreBrokenPipe);
    if (this.handlers.size > 0) forwardInterrupts(false);
    this.handlers.clear();
  }
}
