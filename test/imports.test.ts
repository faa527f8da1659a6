import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from './support';

const SOURCE_DIRS = ['constructs', 'stacks', 'modules', 'cli', 'examples', 'test', 'scripts', 'bin'];
const ENGINE = path.join('constructs', 'private', 'engine.ts');

/** Every .ts/.js source file of the project (not node_modules, not output). */
function sourceFiles(): string[] {
  const files = ['index.ts'];
  const walk = (dir: string) => {
    if (!fs.existsSync(path.join(REPO, dir))) return;
    for (const e of fs.readdirSync(path.join(REPO, dir), { withFileTypes: true })) {
      const rel = path.join(dir, e.name);
      if (e.isDirectory()) walk(rel);
      else if (/\.(ts|mts|js|cjs|mjs)$/.test(e.name)) files.push(rel);
    }
  };
  SOURCE_DIRS.forEach(walk);
  return files;
}

/** Module specifiers a file imports or requires. */
export function importedModules(source: string): string[] {
  const specs: string[] = [];
  const patterns = [
    /\bfrom\s+['"]([^'"]+)['"]/g,
    /\bimport\s+['"]([^'"]+)['"]/g,
    /\brequire\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of source.matchAll(re)) specs.push(m[1]!);
  return specs;
}

/** True when a specifier imports a provider package by its root (or its barrel index). */
export function isProviderRootImport(spec: string): boolean {
  return /^@cdktf\/provider-[a-z0-9-]+(\/lib(\/(index|lazy-index)(\.js)?)?)?$/.test(spec);
}

describe('import rules', () => {
  it('recognizes root and deep provider imports', () => {
    expect(isProviderRootImport('@cdktf/provider-aws')).toBe(true);
    expect(isProviderRootImport('@cdktf/provider-aws/lib')).toBe(true);
    expect(isProviderRootImport('@cdktf/provider-aws/lib/index')).toBe(true);
    expect(isProviderRootImport('@cdktf/provider-aws/lib/instance')).toBe(false);
    // (built from parts, so that this file does not itself contain the imports it scans for)
    const sample = ['import { A } fr', "om '@cdktf/provider-helm';\nconst x = req", 'uire("cdktf");'].join('');
    expect(importedModules(sample)).toEqual(['@cdktf/provider-helm', 'cdktf']);
  });

  it('imports provider classes only by deep path', () => {
    const offenders = sourceFiles().flatMap((file) =>
      importedModules(fs.readFileSync(path.join(REPO, file), 'utf8'))
        .filter(isProviderRootImport)
        .map((spec) => `${file}: ${spec}`),
    );
    expect(offenders).toEqual([]);
  });

  it('imports the cdktf core only through the engine module', () => {
    const offenders = sourceFiles()
      .filter((file) => file !== ENGINE)
      .flatMap((file) =>
        importedModules(fs.readFileSync(path.join(REPO, file), 'utf8'))
          .filter((spec) => spec === 'cdktf' || spec.startsWith('cdktf/'))
          .map((spec) => `${file}: ${spec}`),
      );
    expect(offenders).toEqual([]);
    expect(importedModules(fs.readFileSync(path.join(REPO, ENGINE), 'utf8'))).toContain('cdktf');
  });
});
