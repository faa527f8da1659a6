import type { Construct } from 'constructs';

/**
 * Resources of a scope that follow a desired set, for what depends on declarations made after the scope was
 * created (another datacenter, a peering, a service's intentions). Each `sync` creates the resources newly
 * desired, recreates those whose spec changed and removes those no longer desired, so the construct tree holds
 * exactly what synthesis writes at every moment (`Testing.synth` and aspects see it). Each resource is a direct
 * child of the scope, with the id the set gives it.
 */
export class ResourceSet<T> {
  /** Each resource created, by id, with the spec it was created from (as JSON). */
  private readonly created = new Map<string, string>();

  constructor(
    private readonly scope: Construct,
    private readonly create: (scope: Construct, id: string, spec: T) => void,
  ) {}

  /** Makes the resources of the set those of `desired` (id → spec). */
  public sync(desired: ReadonlyMap<string, T>): void {
    for (const id of [...this.created.keys()]) {
      if (desired.has(id)) continue;
      this.scope.node.tryRemoveChild(id);
      this.created.delete(id);
    }
    for (const [id, spec] of desired) {
      const json = JSON.stringify(spec);
      const before = this.created.get(id);
      if (before === json) continue;
      if (before !== undefined) this.scope.node.tryRemoveChild(id);
      this.create(this.scope, id, spec);
      this.created.set(id, json);
    }
  }
}
