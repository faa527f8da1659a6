/**
 * How the secret store writes: every file to a temporary name renamed into place, and every set of files
 * that must agree (a root's certificate, key and passphrase; a datacenter's intermediate and server
 * certificate with their keys) as one directory, built beside its target and swapped in. An interrupted
 * write leaves either the previous set or the new one, plus leftovers that `repairDirectory` and
 * `removeLeftoverFiles` clean up (under the store's lock) before the store is used.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errors } from '../errors';

/** Written last into a staged directory: it is complete. */
const COMPLETE = '.complete';
const TMP = '.tmp-';

/** Writes a file completely or not at all. */
export function writeFileAtomic(file: string, content: string, mode = 0o600): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}${TMP}${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    fs.writeFileSync(tmp, content, { mode });
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

function staged(target: string, kind: 'staging' | 'old'): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${kind}-${process.pid}`);
}

function leftovers(target: string): { staging: string[]; old: string[] } {
  const dir = path.dirname(target);
  const base = path.basename(target);
  const names = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  const pick = (kind: string) => names.filter((n) => n.startsWith(`.${base}.${kind}-`)).map((n) => path.join(dir, n));
  return { staging: pick('staging'), old: pick('old') };
}

/**
 * Replaces directory `target` with the one `build` writes (given the staged directory and the current one,
 * if any, to copy what stays). Readers see the old set or the new set of files, never a mix.
 */
export function replaceDirectory(target: string, build: (dir: string, previous: string | undefined) => void): void {
  const staging = staged(target, 'staging');
  const old = staged(target, 'old');
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true, mode: 0o700 });
  try {
    build(staging, fs.existsSync(target) ? target : undefined);
    fs.writeFileSync(path.join(staging, COMPLETE), '', { mode: 0o600 });
  } catch (e) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw e;
  }
  fs.rmSync(old, { recursive: true, force: true });
  if (fs.existsSync(target)) fs.renameSync(target, old);
  fs.renameSync(staging, target);
  fs.rmSync(path.join(target, COMPLETE), { force: true });
  fs.rmSync(old, { recursive: true, force: true });
}

/** Copies `names` (those that exist) from `from` into `to`, keeping their modes. */
export function copyFiles(from: string | undefined, to: string, names: readonly string[]): void {
  if (!from) return;
  for (const name of names) {
    const file = path.join(from, name);
    if (fs.existsSync(file)) fs.copyFileSync(file, path.join(to, name));
  }
}

/** True when an interrupted replacement of `target` left something behind. */
export function hasLeftovers(target: string): boolean {
  const { staging, old } = leftovers(target);
  return staging.length + old.length > 0;
}

/**
 * Finishes or undoes an interrupted `replaceDirectory` of `target`: a complete staged set whose target is
 * gone is moved in, else the previous set is put back; every leftover is removed. Returns what it did.
 */
export function repairDirectory(target: string): string | undefined {
  const { staging, old } = leftovers(target);
  if (staging.length + old.length === 0) return undefined;
  let action = 'removed leftovers of an interrupted write';
  if (!fs.existsSync(target)) {
    const complete = staging.find((s) => fs.existsSync(path.join(s, COMPLETE)));
    if (complete) {
      fs.renameSync(complete, target);
      fs.rmSync(path.join(target, COMPLETE), { force: true });
      action = 'finished an interrupted write';
    } else if (old.length > 0) {
      fs.renameSync(old[0]!, target);
      action = 'restored the previous files after an interrupted write';
    }
  }
  for (const dir of [...staging, ...old]) fs.rmSync(dir, { recursive: true, force: true });
  return `${path.basename(target)}: ${action}`;
}

/** Removes the temporary files of interrupted `writeFileAtomic` calls under `dir`. */
export function removeLeftoverFiles(dir: string): string[] {
  const removed: string[] = [];
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.name.includes(TMP)) {
        fs.rmSync(p, { force: true });
        removed.push(p);
      }
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return removed;
}

/** Reads a JSON file of the store; a file that is not JSON is refused naming it and the fix. */
export function readJsonFile<T>(file: string, fix: string): T | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw errors.storeFileCorrupt(file, `cannot be read (${(e as Error).message})`, fix);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw errors.storeFileCorrupt(file, `is not JSON (${(e as Error).message})`, fix);
  }
}
