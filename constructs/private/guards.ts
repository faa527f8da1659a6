/**
 * Checks every meshform construct makes on its scope and id before constructs does, so that a bad id or scope
 * ends in a MeshformError naming the path and the fix rather than in a raw `constructs` error.
 */
import { Construct } from 'constructs';
import { errors } from '../errors';

/** The id, when `scope` can take a child with it; else a MeshformError (empty id, id already taken). */
export function checkedId(scope: Construct, id: unknown): string {
  const scopePath = scope.node.path;
  if (typeof id !== 'string' || id === '') throw errors.invalidConstructId(scopePath, id);
  // constructs turns "/" into "--" in ids: the child that would clash is the one with the sanitized id
  const existing = scope.node.tryFindChild(id.replace(/\//g, '--'));
  if (existing) throw errors.invalidConstructId(scopePath, id, existing.node.path || '(the app)');
  return id;
}

/** `scope` when it is a construct; else a MeshformError naming `what` should be created in. */
export function checkedScope(scope: unknown, id: unknown, what: string, fix: string): Construct {
  if (!Construct.isConstruct(scope)) throw errors.invalidScope(String(id), what, scope, fix);
  return scope;
}

/** The props object, or `{}` when none was given; a MeshformError when props are not an object. */
export function checkedProps<T extends object>(
  path: string,
  what: string,
  props: T | undefined | null,
  fix: string,
): T {
  if (props === undefined || props === null) return {} as T;
  if (typeof props !== 'object' || Array.isArray(props)) throw errors.missingValue(path, what, props, fix);
  return props;
}

/** `value` as a list, or a MeshformError when it is set and is not one. */
export function checkedList<T>(path: string, what: string, value: readonly T[] | undefined, fix: string): readonly T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw errors.missingValue(path, what, value, fix);
  return value;
}

/** Refuses a value that is set but is not one of an enum's values. */
export function checkEnum(path: string, what: string, value: unknown, allowed: object, names: string): void {
  if (value !== undefined && !Object.values(allowed).includes(value)) {
    throw errors.invalidValue(path, what, value, `use one of ${names}`);
  }
}
