import data from './data/consul-agent-config-keys.json';

/**
 * Every key Consul's agent configuration accepts, derived from hashicorp/consul agent/config/config.go by
 * scripts/derive-fixtures.ts: `leaf` takes a scalar, list or string map, `any` is free-form, and a `*` path
 * segment stands for any name.
 */
const KEYS = data.keys as { readonly [path: string]: 'leaf' | 'any' };
const DEPRECATED = new Set<string>(data.deprecated);

type Trie = { kind?: 'leaf' | 'any'; children: Map<string, Trie> };

const ROOT: Trie = (() => {
  const root: Trie = { children: new Map() };
  for (const [path, kind] of Object.entries(KEYS)) {
    let node = root;
    for (const segment of path.split('.')) {
      let next = node.children.get(segment);
      if (!next) node.children.set(segment, (next = { children: new Map() }));
      node = next;
    }
    node.kind = kind;
  }
  return root;
})();

/** A problem with one key of an agent configuration. */
export interface AgentConfigKeyProblem {
  /** Dotted path of the key. */
  readonly path: string;
  /** `unknown`: Consul does not accept it; `deprecated`: accepted but superseded. */
  readonly problem: 'unknown' | 'deprecated';
}

function isPlainObject(v: unknown): v is { [key: string]: unknown } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Checks every key of an agent configuration (as parsed from HCL or JSON) against Consul's key tree.
 * Lists of blocks (HCL repeats a block as a list of objects) are checked element by element.
 */
export function checkAgentConfigKeys(config: { [key: string]: unknown }): AgentConfigKeyProblem[] {
  const problems: AgentConfigKeyProblem[] = [];
  const visit = (value: unknown, node: Trie, path: string) => {
    if (Array.isArray(value)) {
      for (const item of value) visit(item, node, path);
      return;
    }
    if (!isPlainObject(value)) return;
    for (const [key, child] of Object.entries(value)) {
      const p = path ? `${path}.${key}` : key;
      const next = node.children.get(key) ?? node.children.get('*');
      if (!next) {
        problems.push({ path: p, problem: 'unknown' });
        continue;
      }
      if (DEPRECATED.has(p)) problems.push({ path: p, problem: 'deprecated' });
      if (next.kind === 'any' || next.kind === 'leaf') continue;
      visit(child, next, p);
    }
  };
  visit(config, ROOT, '');
  return problems;
}
