/**
 * A lock held by one process at a time, as a file naming its holder: the project lock of `meshform plan`,
 * `deploy`, `synth` and `check`, and the secret store's lock for every write.
 *
 * The lock file appears complete or not at all (written beside it, then hard-linked into place, which fails
 * when it exists). A lock whose holder is gone (same host, no such process, or a process that started at
 * another time) is taken over; a live holder is named in the refusal. Within one process the lock is
 * re-entrant, and every lock still held is released when the process exits.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Who holds a lock. */
export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  /** What the holder runs, e.g. `meshform deploy`. */
  readonly command: string;
  /** When it took the lock (ISO 8601). */
  readonly since: string;
  /** The holder's start time in clock ticks since boot (Linux), to tell it from a later process with its pid. */
  readonly startTicks?: number;
  /** Unique per acquisition. */
  readonly token: string;
}

/** The lock is held by another live process. */
export class LockBusyError extends Error {
  constructor(
    public readonly file: string,
    public readonly holder: LockHolder,
  ) {
    super(`${file} is held by ${describeHolder(holder)}`);
    this.name = 'LockBusyError';
  }
}

/** `meshform deploy (pid 123 on host, since 2025-01-01T00:00:00.000Z)`. */
export function describeHolder(holder: LockHolder): string {
  return `${holder.command} (pid ${holder.pid} on ${holder.host}, since ${holder.since})`;
}

/** Sleeps without an event loop (a synchronous wait for a lock). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** A process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), where /proc exists. */
export function processStartTicks(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) is in parentheses and may hold spaces: count fields after its closing one
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    return Number.isFinite(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

function alive(holder: LockHolder): boolean {
  if (holder.host !== os.hostname()) return true; // cannot tell: another machine sharing the directory
  try {
    process.kill(holder.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  if (holder.startTicks === undefined) return true;
  const ticks = processStartTicks(holder.pid);
  return ticks === undefined || ticks === holder.startTicks;
}

function readHolder(file: string): LockHolder | undefined | 'absent' {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw e;
  }
  try {
    const holder = JSON.parse(text) as LockHolder;
    return typeof holder.pid === 'number' && typeof holder.token === 'string' ? holder : undefined;
  } catch {
    return undefined;
  }
}

/** What this process names itself in the locks it takes, e.g. `meshform deploy`. */
let lockCommand = 'meshform';

/** Names this process's command in the locks it takes. */
export function setLockCommand(command: string): void {
  lockCommand = command;
}

/** Locks this process holds: file → token and depth. */
const held = new Map<string, { token: string; depth: number }>();
let exitHookInstalled = false;

function releaseAllOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [file, { token }] of held) {
      const holder = readHolder(file);
      if (typeof holder === 'object' && holder.token === token) fs.rmSync(file, { force: true });
    }
    held.clear();
  });
}

/** A lock file; see the module comment. */
export class FileLock {
  public readonly file: string;

  /** @param command what the holder runs, as others are told (default: what `setLockCommand` named) */
  constructor(
    file: string,
    private readonly command?: string,
  ) {
    this.file = path.resolve(file);
  }

  /** True while this process holds it. */
  public get held(): boolean {
    return held.has(this.file);
  }

  /** Takes the lock or returns who holds it (without waiting). */
  public tryAcquire(): LockHolder | undefined {
    const mine = held.get(this.file);
    if (mine) {
      mine.depth++;
      return undefined;
    }
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const startTicks = processStartTicks(process.pid);
    const holder: LockHolder = {
      pid: process.pid,
      host: os.hostname(),
      command: this.command ?? lockCommand,
      since: new Date().toISOString(),
      ...(startTicks !== undefined ? { startTicks } : {}),
      token: randomBytes(12).toString('hex'),
    };
    const tmp = `${this.file}.${process.pid}.${holder.token}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify(holder)}\n`, { mode: 0o600 });
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          fs.linkSync(tmp, this.file);
          releaseAllOnExit();
          held.set(this.file, { token: holder.token, depth: 1 });
          return undefined;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
        const current = readHolder(this.file);
        if (current === 'absent') continue;
        if (current && alive(current)) return current;
        this.takeOver(current);
      }
      const current = readHolder(this.file);
      if (typeof current === 'object') return current;
      throw new Error(`could not take the lock ${this.file}`);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }

  /** Moves a dead holder's lock away, unless someone replaced it meanwhile (then it is put back). */
  private takeOver(stale: LockHolder | undefined): void {
    const grave = `${this.file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      fs.renameSync(this.file, grave);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    const moved = readHolder(grave);
    if (stale && typeof moved === 'object' && moved && moved.token !== stale.token) {
      try {
        fs.linkSync(grave, this.file);
      } catch {
        // a third process took the lock meanwhile: it holds it
      }
    }
    fs.rmSync(grave, { force: true });
  }

  /**
   * Takes the lock, waiting up to `waitMs` while a live holder has it (`onWait` is told once who it is);
   * throws LockBusyError when it is still held.
   */
  public acquire(waitMs = 0, onWait?: (holder: LockHolder) => void): void {
    const deadline = Date.now() + waitMs;
    let told = false;
    for (;;) {
      const holder = this.tryAcquire();
      if (!holder) return;
      if (Date.now() >= deadline) throw new LockBusyError(this.file, holder);
      if (!told) onWait?.(holder);
      told = true;
      sleepSync(Math.min(200, Math.max(1, deadline - Date.now())));
    }
  }

  /** Releases one hold; the file goes when the outermost hold is released. */
  public release(): void {
    const mine = held.get(this.file);
    if (!mine) return;
    if (--mine.depth > 0) return;
    held.delete(this.file);
    const holder = readHolder(this.file);
    if (typeof holder === 'object' && holder?.token === mine.token) fs.rmSync(this.file, { force: true });
  }

  /** Runs `fn` holding the lock. */
  public run<T>(fn: () => T, waitMs = 0, onWait?: (holder: LockHolder) => void): T {
    this.acquire(waitMs, onWait);
    try {
      return fn();
    } finally {
      this.release();
    }
  }

  /** Runs the asynchronous `fn` holding the lock. */
  public async runAsync<T>(fn: () => Promise<T>): Promise<T> {
    this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}
