/**
 * Reading `terraform show -json <plan>`: each resource change with its action, why a replace happens, and the
 * construct that produced the resource (cdktf's metadata in the synthesized stack).
 */

/** What happens to one resource. */
export type ResourceAction = 'create' | 'update' | 'replace' | 'delete';

/** One resource change of a stack's plan. */
export interface ResourceChange {
  /** Terraform address, e.g. `aws_instance.server-0`. */
  readonly address: string;
  readonly type: string;
  readonly action: ResourceAction;
  /** The construct path that produced it, e.g. `shop-aws-vms/server-0`. */
  readonly constructPath?: string;
  /** The attributes that force a replacement (`replace_paths`), e.g. `user_data`. */
  readonly replaceBecause?: readonly string[];
}

/** A stack's plan in numbers and changes. */
export interface StackPlanSummary {
  readonly counts: {
    readonly create: number;
    readonly update: number;
    readonly replace: number;
    readonly delete: number;
  };
  readonly resources: readonly ResourceChange[];
  /** Outputs whose value changes. */
  readonly outputsChanged: readonly string[];
  /** True when the stack has state (something was applied before). */
  readonly applied: boolean;
  /** How many managed resources the state held before the plan. */
  readonly priorResources: number;
  /** The outputs in the state before the plan. */
  readonly priorOutputs: { readonly [name: string]: unknown };
}

/** The parts of `terraform show -json <plan>` read here (also decoded from a plan file: terraform-planfile.ts). */
export interface PlanJson {
  readonly resource_changes?: readonly {
    readonly address: string;
    readonly type: string;
    readonly name: string;
    readonly mode?: string;
    readonly change: {
      readonly actions: readonly string[];
      readonly replace_paths?: readonly (readonly (string | number)[])[];
    };
  }[];
  readonly output_changes?: {
    readonly [name: string]: {
      readonly actions: readonly string[];
      readonly before?: unknown;
      readonly before_sensitive?: unknown;
    };
  };
  readonly prior_state?: {
    readonly values?: {
      readonly outputs?: { readonly [name: string]: { readonly value: unknown } };
      readonly root_module?: { readonly resources?: readonly { readonly mode?: string }[] };
    };
  };
}

interface StackJson {
  readonly resource?: {
    readonly [type: string]: {
      readonly [name: string]: { readonly '//'?: { readonly metadata?: { readonly path?: string } } };
    };
  };
}

function actionOf(actions: readonly string[]): ResourceAction | undefined {
  if (actions.includes('delete') && actions.includes('create')) return 'replace';
  if (actions.includes('create')) return 'create';
  if (actions.includes('delete')) return 'delete';
  if (actions.includes('update')) return 'update';
  return undefined;
}

/** Summarizes a JSON plan; `stackJson` (the synthesized cdk.tf.json) maps resources back to constructs. */
export function summarizeTerraformPlan(plan: PlanJson, stackJson: StackJson): StackPlanSummary {
  const counts = { create: 0, update: 0, replace: 0, delete: 0 };
  const resources: ResourceChange[] = [];
  for (const rc of plan.resource_changes ?? []) {
    if (rc.mode === 'data') continue;
    const action = actionOf(rc.change.actions);
    if (!action) continue;
    counts[action]++;
    const constructPath = stackJson.resource?.[rc.type]?.[rc.name]?.['//']?.metadata?.path;
    const because = (rc.change.replace_paths ?? []).map((p) => p.join('.'));
    resources.push({
      address: rc.address,
      type: rc.type,
      action,
      ...(constructPath ? { constructPath } : {}),
      ...(action === 'replace' && because.length > 0 ? { replaceBecause: because } : {}),
    });
  }
  const outputsChanged = Object.entries(plan.output_changes ?? {})
    .filter(([, c]) => !c.actions.every((a) => a === 'no-op'))
    .map(([name]) => name)
    .sort();
  // The values in the state before the plan are each output change's `before` (prior_state also holds the
  // outputs the plan already knows, as if applied, so it cannot tell what was applied).
  const priorOutputs = Object.fromEntries(
    Object.entries(plan.output_changes ?? {})
      // a sensitive output's value is never carried into meshform's plan
      .filter(
        ([, c]) =>
          !c.actions.includes('create') && c.before !== undefined && c.before !== null && c.before_sensitive !== true,
      )
      .map(([k, c]) => [k, c.before]),
  );
  // data sources read by this plan are in the prior state too: only managed resources were applied
  const priorResources = (plan.prior_state?.values?.root_module?.resources ?? []).filter(
    (r) => r.mode === undefined || r.mode === 'managed',
  ).length;
  return {
    counts,
    resources,
    outputsChanged,
    applied: priorResources > 0 || Object.keys(priorOutputs).length > 0,
    priorResources,
    priorOutputs,
  };
}

/** True when the plan changes nothing (resources or outputs). */
export function isEmptyPlan(summary: StackPlanSummary): boolean {
  return summary.resources.length === 0 && summary.outputsChanged.length === 0;
}
