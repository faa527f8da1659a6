/**
 * Intentions: which services may call which. The mesh denies everything by default (ACL default deny and no
 * intention means no traffic); `target.allowFrom(source)` and `target.denyFrom(source)` declare the exceptions,
 * optionally with L7 permissions for HTTP services.
 */

/** What an intention or permission does. */
export enum IntentionAction {
  ALLOW = 'allow',
  DENY = 'deny',
}

/** A request header condition (one of exact, prefix, suffix, regex or present). */
export interface HeaderMatch {
  /** Header name. */
  readonly name: string;
  /**
   * The header has exactly this value.
   * @default - not matched on its value
   */
  readonly exact?: string;
  /**
   * The header value starts with this.
   * @default - not matched on a prefix
   */
  readonly prefix?: string;
  /**
   * The header value ends with this.
   * @default - not matched on a suffix
   */
  readonly suffix?: string;
  /**
   * The header value matches this RE2 regular expression.
   * @default - not matched on a regular expression
   */
  readonly regex?: string;
  /**
   * The header is present (any value).
   * @default false
   */
  readonly present?: boolean;
  /**
   * Match when the condition does NOT hold.
   * @default false
   */
  readonly invert?: boolean;
}

/** Which HTTP requests a permission or a route matches. Set at most one of pathExact, pathPrefix, pathRegex. */
export interface HttpMatch {
  /**
   * The path is exactly this.
   * @default - any path
   */
  readonly pathExact?: string;
  /**
   * The path starts with this.
   * @default - any path
   */
  readonly pathPrefix?: string;
  /**
   * The path matches this RE2 regular expression.
   * @default - any path
   */
  readonly pathRegex?: string;
  /**
   * The request method is one of these (e.g. GET, POST).
   * @default - any method
   */
  readonly methods?: readonly string[];
  /**
   * Every one of these header conditions holds.
   * @default - no header condition
   */
  readonly headers?: readonly HeaderMatch[];
}

/** An L7 permission of an intention: allow or deny the HTTP requests that match. */
export class HttpPermission {
  /** Allows the requests that match. */
  public static allow(match: HttpMatch): HttpPermission {
    return new HttpPermission(IntentionAction.ALLOW, match);
  }

  /** Denies the requests that match. */
  public static deny(match: HttpMatch): HttpPermission {
    return new HttpPermission(IntentionAction.DENY, match);
  }

  private constructor(
    /** Allow or deny. */
    public readonly action: IntentionAction,
    /** The requests it applies to. */
    public readonly match: HttpMatch,
  ) {}

  /** One line: `allow GET,POST /api*`. */
  public describe(): string {
    const path =
      this.match.pathExact ??
      (this.match.pathPrefix ? `${this.match.pathPrefix}*` : this.match.pathRegex ? `~${this.match.pathRegex}` : '*');
    const headers = (this.match.headers ?? []).map((h) => `${h.invert ? '!' : ''}${h.name}`);
    return `${this.action} ${this.match.methods?.join(',') ?? 'ANY'} ${path}${headers.length ? ` [${headers.join(', ')}]` : ''}`;
  }
}

/** Options of `allowFrom`. */
export interface AllowOptions {
  /**
   * L7 permissions, evaluated in order (the first match decides); requests that match none are denied.
   * Only for HTTP-family services.
   * @default - every request of the source is allowed (L4)
   */
  readonly permissions?: readonly HttpPermission[];
  /**
   * Why the intention exists (shown in Consul).
   * @default - none
   */
  readonly description?: string;
}

/** An intention as data (mesh manifest, config entries, check). */
export interface IntentionDescription {
  /** The calling service. */
  readonly source: string;
  readonly action: IntentionAction;
  /** L7 permissions, when the intention has them (its action is then decided per request). */
  readonly permissions?: readonly { readonly action: IntentionAction; readonly match: HttpMatch }[];
  readonly description?: string;
}
