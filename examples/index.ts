/**
 * Every runnable example, for the suite (snapshots, real validators, Terraform plans) and the benchmarks.
 */
import type { App } from '../constructs/private/engine';
import { defineDefaultMesh } from './default/main';
import { defineHybridMesh } from './hybrid/main';
import { defineMultiClusterMesh } from './multi-cluster/main';

/** An example: its directory name and how it declares its mesh. */
export interface Example {
  readonly name: string;
  readonly define: (app: App) => unknown;
}

export const EXAMPLES: readonly Example[] = [
  { name: 'default', define: defineDefaultMesh },
  { name: 'multi-cluster', define: defineMultiClusterMesh },
  { name: 'hybrid', define: defineHybridMesh },
];
