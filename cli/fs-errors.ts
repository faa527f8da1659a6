/**
 * File system failures as one line that names the path and the fix: a full disk, a read-only or mounted
 * directory, missing permissions. Node reports them as errors with a `code` (ENOSPC, EROFS, ...), the
 * `syscall` and the `path` (and `dest` for a rename); a child process (the cdktf app) prints them as
 * `ENOSPC: no space left on device, write` or `EACCES: permission denied, mkdir '/x'`.
 */
import * as path from 'node:path';
import { CliError } from './output';

/** What each code means, in words. */
const MEANING: { readonly [code: string]: string } = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exceeded',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EBUSY: 'it is busy: a mount point, or in use',
  EXDEV: 'it is on another file system (a mount point in between)',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  ENAMETOOLONG: 'the path is too long',
  ENOTDIR: 'a part of the path is not a directory',
  EISDIR: 'it is a directory',
  ENOTEMPTY: 'the directory is not empty',
  EIO: 'an input/output error of the device',
};

/** The codes reported this way (any other error is not a file system condition the user can fix). */
export const FILE_SYSTEM_CODES: readonly string[] = Object.keys(MEANING);

/** What a system call did, in words. */
function action(syscall: string | undefined, file: string, dest: string | undefined): string {
  switch (syscall) {
    case 'mkdir':
    case 'mkdtemp':
      return `create the directory ${file}`;
    case 'rename':
      return dest ? `move ${file} to ${dest}` : `move ${file}`;
    case 'unlink':
    case 'rmdir':
    case 'rm':
      return `remove ${file}`;
    case 'chmod':
    case 'fchmod':
      return `change the mode of ${file}`;
    case 'read':
    case 'scandir':
    case 'stat':
    case 'lstat':
      return `read ${file}`;
    case 'copyfile':
      return dest ? `copy ${file} to ${dest}` : `copy ${file}`;
    default:
      return `write ${file}`;
  }
}

/** How to fix it. */
function fix(code: string, file: string, syscall: string | undefined): string {
  const dir = path.dirname(file);
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return `free space on the file system holding ${dir} (df -h ${dir}), then run again`;
    case 'EROFS':
      return `${dir} is on a read-only file system: remount it read-write, or point meshform at a writable place ("output" in cdktf.json, --secrets-dir, --project)`;
    case 'EACCES':
    case 'EPERM':
      return `give your user write access to ${dir} (ls -ld ${dir}), or run meshform as its owner`;
    case 'EBUSY':
    case 'EXDEV':
      return syscall === 'rename'
        ? `meshform replaces a directory by renaming a complete new one into place, which a mount point refuses: set "output" in cdktf.json to a directory inside the mount (e.g. "${path.join(path.basename(file), 'app')}"), or mount its parent instead`
        : `stop what holds ${file} (lsof +D ${dir}), then run again`;
    case 'EMFILE':
    case 'ENFILE':
      return 'raise the limit of open files (ulimit -n), then run again';
    default:
      return `check ${file}, then run again`;
  }
}

/** A Node error with a file system code, as thrown by `fs`. */
interface SystemError {
  readonly code: string;
  readonly syscall?: string;
  readonly path?: string;
  readonly dest?: string;
}

function isSystemError(e: unknown): e is SystemError {
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof (e as SystemError).code === 'string' &&
    FILE_SYSTEM_CODES.includes((e as SystemError).code)
  );
}

/** The one-line message of a file system failure: what could not be done to which path, why, and the fix. */
export function fileSystemMessage(code: string, syscall: string | undefined, file: string, dest?: string): string {
  return `cannot ${action(syscall, file, dest)}: ${MEANING[code] ?? code} (${code}). Fix: ${fix(code, dest && code === 'EXDEV' ? dest : file, syscall)}`;
}

/**
 * A CliError for a file system failure (exit 1), or undefined for any other error. `context` is added after
 * the message (e.g. what was left as it was).
 */
export function fileSystemError(e: unknown, context?: string): CliError | undefined {
  if (!isSystemError(e) || e.path === undefined) return undefined;
  return new CliError(`${fileSystemMessage(e.code, e.syscall, e.path, e.dest)}${context ? `; ${context}` : ''}`);
}

/**
 * The file system failure a child process printed (Node's `CODE: meaning, syscall 'path'`), as one line, or
 * undefined when its output shows none. `where` stands for the path when the child printed none (a failed
 * `write` names no file).
 */
export function fileSystemFailureIn(output: string, where: string): string | undefined {
  const m = /\b([A-Z]{4,12}): [^,\n]+, (\w+)(?: '([^']+)'(?: -> '([^']+)')?)?/.exec(output);
  if (!m || !FILE_SYSTEM_CODES.includes(m[1]!)) return undefined;
  const [, code, syscall, file, dest] = m;
  return fileSystemMessage(code!, syscall, file ?? where, dest);
}
