/**
 * A consumer's app for the packed meshform tarball, installed offline.
 *
 * `npm ci` fills npm's cache with the tarballs of the repository's lockfile, not with the registry's package
 * documents, so npm cannot resolve version ranges offline. The app therefore gets a lockfile of its own, cut
 * from the repository's: every package the app needs, at the place and version the repository's tree has it,
 * with `overrides` replacing some (the lowest supported constructs, kept in the repository as an npm alias so
 * that `npm ci` caches it). `npm ci --offline` then installs it from the cache alone, and `npm ls --all`
 * checks that the tree it built satisfies every dependency and peer range.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** One package of a v3 lockfile (the fields this module reads or writes). */
export interface LockEntry {
  readonly name?: string;
  readonly version?: string;
  readonly resolved?: string;
  readonly integrity?: string;
  readonly dependencies?: { readonly [name: string]: string };
  readonly optionalDependencies?: { readonly [name: string]: string };
  readonly peerDependencies?: { readonly [name: string]: string };
  readonly peerDependenciesMeta?: { readonly [name: string]: { readonly optional?: boolean } };
  readonly devDependencies?: { readonly [name: string]: string };
  readonly dev?: boolean;
  readonly optional?: boolean;
  readonly devOptional?: boolean;
  readonly peer?: boolean;
  readonly [field: string]: unknown;
}

/** A v3 lockfile. */
export interface Lockfile {
  readonly name: string;
  readonly version?: string;
  readonly lockfileVersion: 3;
  readonly requires: true;
  readonly packages: { readonly [location: string]: LockEntry };
}

/** Where `name` is found from the package at `from` (Node's lookup: the nearest node_modules upwards). */
function lookupPaths(from: string, name: string): string[] {
  const out: string[] = [];
  let at = from;
  for (;;) {
    out.push(at ? `${at}/node_modules/${name}` : `node_modules/${name}`);
    if (!at) return out;
    const i = at.lastIndexOf('/node_modules/');
    at = i < 0 ? '' : at.slice(0, i);
  }
}

/** The edges of a package npm installs: dependencies and non-optional peers required, optional ones not. */
function edges(entry: LockEntry): { name: string; optional: boolean }[] {
  const optionalPeer = (n: string) => entry.peerDependenciesMeta?.[n]?.optional === true;
  return [
    ...Object.keys(entry.dependencies ?? {}).map((name) => ({ name, optional: false })),
    ...Object.keys(entry.devDependencies ?? {}).map((name) => ({ name, optional: false })),
    ...Object.keys(entry.peerDependencies ?? {})
      .filter((n) => !optionalPeer(n))
      .map((name) => ({ name, optional: false })),
    ...Object.keys(entry.optionalDependencies ?? {}).map((name) => ({ name, optional: true })),
  ];
}

/**
 * The lockfile of an app whose root entry is `root`, cut from `source` (the repository's lockfile):
 * `overrides` puts other entries at some locations (e.g. the tarball under test, an aliased version).
 * Throws when a dependency cannot be found or a root dependency's version differs from the one pinned.
 */
export function consumerLockfile(
  source: Lockfile,
  root: {
    name: string;
    version: string;
    dependencies: { [n: string]: string };
    devDependencies: { [n: string]: string };
  },
  overrides: { [location: string]: LockEntry },
): Lockfile {
  const view = (location: string): LockEntry | undefined => overrides[location] ?? source.packages[location];
  const rootEntry: LockEntry = {
    name: root.name,
    dependencies: root.dependencies,
    devDependencies: root.devDependencies,
  };
  const resolve = (from: string, name: string): string | undefined =>
    lookupPaths(from, name).find((l) => view(l) !== undefined && view(l)!.link !== true);

  // Every package reachable from the root, and those reachable through required edges only.
  const walk = (requiredOnly: boolean): Set<string> => {
    const seen = new Set<string>();
    const queue: [string, LockEntry][] = [['', rootEntry]];
    while (queue.length > 0) {
      const [at, entry] = queue.shift()!;
      for (const edge of edges(entry)) {
        if (requiredOnly && edge.optional) continue;
        const found = resolve(at, edge.name);
        if (found === undefined) {
          if (edge.optional) continue;
          throw new Error(`${at || 'the app'} needs ${edge.name}, which the repository's lockfile does not hold`);
        }
        if (!seen.has(found)) {
          seen.add(found);
          queue.push([found, view(found)!]);
        }
      }
    }
    return seen;
  };
  const required = walk(true);
  const all = walk(false);

  for (const [name, version] of Object.entries({ ...root.dependencies, ...root.devDependencies })) {
    const entry = view(`node_modules/${name}`);
    if (!version.startsWith('file:') && entry?.version !== version)
      throw new Error(`the app pins ${name} ${version}, the lockfile holds ${entry?.version ?? 'nothing'}`);
  }

  const packages: { [location: string]: LockEntry } = { '': rootEntry };
  for (const location of [...all].sort()) {
    // The repository's flags describe its own tree: recompute the one that matters for this app (optional).
    // `name` marks an npm alias (a folder named otherwise than the package): kept where it still is one.
    const { dev: _dev, optional: _optional, devOptional: _devOptional, peer: _peer, name, ...entry } = view(location)!;
    const folder = location.slice(location.lastIndexOf('node_modules/') + 'node_modules/'.length);
    packages[location] = {
      ...(name !== undefined && name !== folder ? { name } : {}),
      ...entry,
      ...(required.has(location) ? {} : { optional: true }),
    };
  }
  return { name: root.name, version: root.version, lockfileVersion: 3, requires: true, packages };
}

/** The lockfile entry of a packed tarball, installed from `file:<relative>`. */
export function tarballEntry(tarball: string, relative: string, manifest: LockEntry): LockEntry {
  const integrity = `sha512-${crypto.createHash('sha512').update(fs.readFileSync(tarball)).digest('base64')}`;
  const fields = ['version', 'license', 'dependencies', 'peerDependencies', 'bin', 'engines'] as const;
  return {
    ...Object.fromEntries(fields.filter((f) => manifest[f] !== undefined).map((f) => [f, manifest[f]])),
    resolved: `file:${relative.split(path.sep).join('/')}`,
    integrity,
  };
}
