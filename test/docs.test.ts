import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from './support';

/** The public props/options interfaces of constructs/ and modules/, with each property and its doc comment. */
function publicProps(): { file: string; iface: string; prop: string; optional: boolean; doc: string }[] {
  const out: { file: string; iface: string; prop: string; optional: boolean; doc: string }[] = [];
  for (const dir of ['constructs', 'modules']) {
    for (const name of fs.readdirSync(path.join(REPO, dir)).filter((f) => f.endsWith('.ts'))) {
      const file = path.join(dir, name);
      const source = fs.readFileSync(path.join(REPO, file), 'utf8');
      for (const m of source.matchAll(/export interface (\w+(?:Props|Options|Spec))\b[^{]*\{([\s\S]*?)\n\}/g)) {
        const body = m[2]!;
        for (const p of body.matchAll(/(\/\*\*[\s\S]*?\*\/)?\s*readonly (\w+)(\??):/g)) {
          out.push({ file, iface: m[1]!, prop: p[2]!, optional: p[3] === '?', doc: p[1] ?? '' });
        }
      }
    }
  }
  return out;
}

describe('public props', () => {
  it('finds the props interfaces', () => {
    const ifaces = new Set(publicProps().map((p) => p.iface));
    expect(ifaces).toContain('MeshProps');
    expect(ifaces).toContain('KubernetesDatacenterProps');
    expect(ifaces).toContain('MeshGatewayOptions');
  });

  it('documents every prop, and gives every optional prop a @default', () => {
    const missing = publicProps()
      .filter((p) => p.doc === '' || (p.optional && !/@default\s+\S/.test(p.doc)))
      .map((p) => `${p.file} ${p.iface}.${p.prop}`);
    expect(missing).toEqual([]);
  });

  it('uses no untyped bags (Record<string, any>, any) in public props', () => {
    for (const dir of ['constructs', 'modules']) {
      for (const name of fs.readdirSync(path.join(REPO, dir)).filter((f) => f.endsWith('.ts'))) {
        const source = fs.readFileSync(path.join(REPO, dir, name), 'utf8');
        for (const m of source.matchAll(/export interface (\w+(?:Props|Options|Spec))\b[^{]*\{([\s\S]*?)\n\}/g)) {
          expect(m[2], `${name} ${m[1]}`).not.toMatch(/:\s*any\b|Record<string,\s*any>|Record<string,\s*unknown>/);
        }
      }
    }
  });
});

describe('README Architecture section', () => {
  it('names every source file of the layout, so it stays true when the layout changes', () => {
    // GIVEN the Architecture section of the README
    const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Architecture'), readme.indexOf('## Development'));
    // WHEN every TypeScript file of the layout's folders is looked up in it
    const unnamed = ['constructs', 'constructs/private', 'stacks', 'modules', 'cli', 'scripts']
      .flatMap((dir) =>
        fs
          .readdirSync(path.join(REPO, dir))
          .filter((f) => f.endsWith('.ts'))
          .map((f) => ({ dir, name: f.slice(0, -'.ts'.length) })),
      )
      .filter(({ name }) => !new RegExp(`\\b${name.replace(/[-.]/g, '\\$&')}(\\.ts)?\\b`).test(section))
      .map(({ dir, name }) => `${dir}/${name}.ts`);
    // THEN none is missing
    expect(unnamed).toEqual([]);
  });
});
