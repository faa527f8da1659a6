/**
 * Checks a Consul filter expression the way Consul does before it stores a service-resolver subset: Consul
 * parses `Subsets[*].Filter` with go-bexpr (`bexpr.CreateEvaluator`, hashicorp/consul
 * agent/structs/config_entry_discoverychain.go, ServiceResolverConfigEntry.Validate) and refuses the entry when
 * the expression does not parse. This is a recognizer of go-bexpr's PEG grammar (hashicorp/go-bexpr
 * grammar/grammar.peg): the same ordered choices, the same errors raised from its semantic predicates (an
 * unterminated string, a number followed by something else, an unclosed index, unmatched parentheses), and
 * string literals unquoted as Go's strconv.Unquote does. On top of the grammar, a `matches` value must be a
 * regular expression (evaluated with Go's regexp on every proxy) and the expression must select fields of
 * what a subset filters: Consul evaluates it against `structs.CheckServiceNode` (Node, Service, Checks) when
 * it builds each proxy's endpoints (agent/xds endpoints, filterSubsetEndpoints).
 */
import { re2Problem } from './validation';

/** The fields of Consul's CheckServiceNode, the only roots a subset filter can select. */
const FILTER_ROOTS = ['Node', 'Service', 'Checks'];

/** Why `filter` is not a valid subset filter, or undefined when it is. */
export function filterProblem(filter: string): string | undefined {
  if (filter.trim() === '') return 'it is empty';
  const parser = new Parser(filter);
  const end = parser.input();
  if (parser.errors.length > 0) return parser.errors[0];
  if (end < 0) return parser.syntaxError();
  for (const selector of parser.selectors) {
    if (!FILTER_ROOTS.includes(selector)) {
      return `selector "${selector}" does not start with ${FILTER_ROOTS.join(', ')}`;
    }
  }
  for (const regex of parser.regexes) {
    const problem = re2Problem(regex);
    if (problem) return `the value of matches is not a regular expression: ${problem}`;
  }
  return undefined;
}

const WS = /[ \t\r\n]/;

/** A backtracking recognizer of go-bexpr's grammar; positions are string indexes, -1 is "no match". */
class Parser {
  /** Errors the grammar's semantic predicates raise (they fail the whole parse, as in pigeon). */
  public readonly errors: string[] = [];
  /** First segment of each field selector used (not inline values or JSON pointers). */
  public readonly selectors: string[] = [];
  /** Values of `matches` / `not matches`. */
  public readonly regexes: string[] = [];
  private farthest = 0;

  constructor(private readonly s: string) {}

  public syntaxError(): string {
    const at = this.farthest;
    if (at >= this.s.length) return 'it ends too early';
    return `unexpected ${JSON.stringify(this.s.slice(at, at + 12))} at character ${at + 1}`;
  }

  private reach(pos: number): void {
    if (pos > this.farthest) this.farthest = pos;
  }

  private fail(message: string): number {
    if (!this.errors.includes(message)) this.errors.push(message);
    return -1;
  }

  private ws(pos: number): number {
    let p = pos;
    while (p < this.s.length && WS.test(this.s[p]!)) p++;
    if (p === pos) this.reach(pos);
    return p > pos ? p : -1;
  }

  private optWs(pos: number): number {
    const p = this.ws(pos);
    return p < 0 ? pos : p;
  }

  private lit(pos: number, text: string): number {
    if (this.s.startsWith(text, pos)) return pos + text.length;
    this.reach(pos);
    return -1;
  }

  /** `_ word _` sequences such as ` not in `; `trailing` false leaves out the last whitespace. */
  private words(pos: number, words: readonly string[], trailing: boolean): number {
    let p = pos;
    for (const word of words) {
      p = this.ws(p);
      if (p < 0) return -1;
      p = this.lit(p, word);
      if (p < 0) return -1;
    }
    return trailing ? this.ws(p) : p;
  }

  public input(): number {
    const start = this.optWs(0);
    const open = this.lit(start, '(');
    if (open >= 0) {
      const saved = this.snapshot();
      let p = this.or(this.optWs(open));
      if (p >= 0) {
        p = this.lit(this.optWs(p), ')');
        if (p >= 0) {
          p = this.optWs(p);
          if (p === this.s.length) return p;
        }
      }
      this.restore(saved);
    }
    let p = this.or(start);
    if (p < 0) return -1;
    p = this.optWs(p);
    if (p !== this.s.length) {
      this.reach(p);
      return -1;
    }
    return p;
  }

  private snapshot(): [number, number] {
    return [this.selectors.length, this.regexes.length];
  }

  private restore([selectors, regexes]: [number, number]): void {
    this.selectors.length = selectors;
    this.regexes.length = regexes;
  }

  private binary(pos: number, operand: (p: number) => number, word: string, self: (p: number) => number): number {
    const left = operand(pos);
    if (left < 0) return -1;
    const saved = this.snapshot();
    const op = this.words(left, [word], true);
    if (op >= 0) {
      const right = self(op);
      if (right >= 0) return right;
    }
    this.restore(saved);
    return left;
  }

  private or(pos: number): number {
    return this.binary(
      pos,
      (p) => this.and(p),
      'or',
      (p) => this.or(p),
    );
  }

  private and(pos: number): number {
    return this.binary(
      pos,
      (p) => this.not(p),
      'and',
      (p) => this.and(p),
    );
  }

  private not(pos: number): number {
    const word = this.lit(pos, 'not');
    if (word >= 0) {
      const space = this.ws(word);
      if (space >= 0) {
        const saved = this.snapshot();
        const inner = this.not(space);
        if (inner >= 0) return inner;
        this.restore(saved);
      }
    }
    return this.parenthesized(pos);
  }

  private parenthesized(pos: number): number {
    const open = this.lit(pos, '(');
    if (open >= 0) {
      const saved = this.snapshot();
      const inner = this.or(this.optWs(open));
      if (inner >= 0) {
        const close = this.lit(this.optWs(inner), ')');
        if (close >= 0) return close;
      }
      this.restore(saved);
    }
    const match = this.match(pos);
    if (match >= 0) return match;
    if (open >= 0) {
      const inner = this.or(this.optWs(open));
      if (inner >= 0 && this.lit(this.optWs(inner), ')') < 0) return this.fail('unmatched parentheses');
    }
    return -1;
  }

  private match(pos: number): number {
    const saved = this.snapshot();
    // Selector (== | != | contains | not contains | matches | not matches) Value
    const selector = this.selector(pos);
    if (selector >= 0) {
      const operators: [readonly string[] | string, boolean][] = [
        ['==', false],
        ['!=', false],
        [['contains'], false],
        [['not', 'contains'], false],
        [['matches'], true],
        [['not', 'matches'], true],
      ];
      for (const [op, regex] of operators) {
        const after = typeof op === 'string' ? this.lit(this.optWs(selector), op) : this.words(selector, op, true);
        if (after < 0) continue;
        const valueStart = typeof op === 'string' ? this.optWs(after) : after;
        const value = this.value(valueStart);
        if (value >= 0) {
          if (regex) this.regexes.push(this.lastValue);
          return value;
        }
      }
      // Selector (is empty | is not empty)
      for (const words of [
        ['is', 'empty'],
        ['is', 'not', 'empty'],
      ]) {
        const after = this.words(selector, words, false);
        if (after >= 0) return after;
      }
    }
    this.restore(saved);
    // Value (in | not in) Selector
    const value = this.value(pos);
    if (value >= 0) {
      for (const words of [['in'], ['not', 'in']]) {
        const after = this.words(value, words, true);
        if (after < 0) continue;
        const target = this.selector(after);
        if (target >= 0) return target;
        return this.fail('invalid selector');
      }
    }
    this.restore(saved);
    return -1;
  }

  /** The unquoted text of the last value parsed (for `matches`). */
  private lastValue = '';

  private identifier(pos: number): number {
    if (pos < this.s.length && /[a-zA-Z]/.test(this.s[pos]!)) {
      let p = pos + 1;
      while (p < this.s.length && /[a-zA-Z0-9_/]/.test(this.s[p]!)) p++;
      return p;
    }
    this.reach(pos);
    return -1;
  }

  /** A selector; `field` records its root (a value in selector form is a bare string, not a field). */
  private selector(pos: number, field = true): number {
    const first = this.identifier(pos);
    if (first >= 0) {
      let p = first;
      for (;;) {
        const dot = this.lit(p, '.');
        if (dot >= 0) {
          const ident = this.identifier(dot);
          if (ident >= 0) {
            p = ident;
            continue;
          }
        }
        const index = this.index(p);
        if (index >= 0) {
          p = index;
          continue;
        }
        if (dot >= 0 && /[0-9]/.test(this.s[dot] ?? '')) {
          p = dot;
          while (p < this.s.length && /[0-9]/.test(this.s[p]!)) p++;
          continue;
        }
        break;
      }
      if (field) this.selectors.push(this.s.slice(pos, first));
      this.lastValue = this.s.slice(pos, p);
      return p;
    }
    // an inline list of strings: ["a", "b"]
    const open = this.lit(pos, '[');
    if (open >= 0) {
      let p = this.string(this.optWs(open));
      if (p >= 0) {
        for (;;) {
          const comma = this.lit(p, ',');
          if (comma < 0) break;
          const next = this.string(this.optWs(comma));
          if (next < 0) break;
          p = next;
        }
        const close = this.lit(this.optWs(p), ']');
        if (close >= 0) return close;
      }
    }
    // a JSON pointer: "/Service/Meta/version"
    const quote = this.lit(pos, '"');
    if (quote >= 0) {
      let p = quote;
      for (;;) {
        if (this.s[p] !== '/') break;
        let q = p + 1;
        while (q < this.s.length && /[\p{L}\p{N}\-_.~:|]/u.test(this.s[q]!)) q++;
        if (q === p + 1) break;
        p = q;
      }
      const close = this.lit(p, '"');
      if (close >= 0) {
        this.lastValue = this.s.slice(quote, p);
        return close;
      }
    }
    return -1;
  }

  private index(pos: number): number {
    const open = this.lit(pos, '[');
    if (open < 0) return -1;
    const start = this.optWs(open);
    const literal = this.string(start);
    if (literal < 0) return this.fail('invalid index');
    const close = this.lit(this.optWs(literal), ']');
    if (close < 0) return this.fail('unclosed index expression');
    return close;
  }

  private value(pos: number): number {
    const selector = this.selector(pos, false);
    if (selector >= 0) return selector;
    const number = this.number(pos);
    if (number >= 0) return number;
    return this.string(pos);
  }

  private number(pos: number): number {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?/.exec(this.s.slice(pos));
    if (!m) {
      this.reach(pos);
      return -1;
    }
    const end = pos + m[0].length;
    if (end === this.s.length || WS.test(this.s[end]!) || this.s[end] === ')') {
      this.lastValue = m[0];
      return end;
    }
    return this.fail('invalid number literal');
  }

  private string(pos: number): number {
    const quote = this.s[pos];
    if (quote !== '`' && quote !== '"') {
      this.reach(pos);
      return -1;
    }
    const close = this.s.indexOf(quote, pos + 1);
    if (close < 0) return this.fail('unterminated string literal');
    const body = this.s.slice(pos + 1, close);
    if (quote === '`') {
      this.lastValue = body.replace(/\r/g, '');
      return close + 1;
    }
    const unquoted = unquoteGo(body);
    if (unquoted === undefined) return this.fail(`string literal "${body}" is not a valid Go string`);
    this.lastValue = unquoted;
    return close + 1;
  }
}

/** The body of a Go double-quoted string literal unquoted as strconv.Unquote does, or undefined when invalid. */
function unquoteGo(body: string): string | undefined {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '\n') return undefined;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = body[++i];
    const simple: { [k: string]: string } = {
      a: '\x07',
      b: '\b',
      f: '\f',
      n: '\n',
      r: '\r',
      t: '\t',
      v: '\v',
      '\\': '\\',
      '"': '"',
    };
    if (e !== undefined && simple[e] !== undefined) {
      out += simple[e];
      continue;
    }
    const hex = (digits: number): number | undefined => {
      const text = body.slice(i + 1, i + 1 + digits);
      if (!new RegExp(`^[0-9a-fA-F]{${digits}}$`).test(text)) return undefined;
      i += digits;
      return parseInt(text, 16);
    };
    if (e === 'x') {
      const v = hex(2);
      if (v === undefined) return undefined;
      out += String.fromCharCode(v);
    } else if (e === 'u' || e === 'U') {
      const v = hex(e === 'u' ? 4 : 8);
      if (v === undefined || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return undefined;
      out += String.fromCodePoint(v);
    } else if (e !== undefined && /[0-7]/.test(e)) {
      const text = body.slice(i, i + 3);
      if (!/^[0-7]{3}$/.test(text) || parseInt(text, 8) > 255) return undefined;
      i += 2;
      out += String.fromCharCode(parseInt(text, 8));
    } else {
      return undefined;
    }
  }
  return out;
}
