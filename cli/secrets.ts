import type { MeshManifest } from '../constructs/private/mesh-manifest';
import { secretInputs } from '../constructs/private/secret-inputs';
import { SecretStore } from '../constructs/secret-store';

/** A shell single-quoted string. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** `export TF_VAR_<name>='<value>'` lines for every secret variable of the meshes. */
export function secretsAsShellExports(store: SecretStore, meshes: readonly MeshManifest[]): string {
  const lines: string[] = [];
  for (const mesh of meshes) {
    const secrets = store.ensure(mesh.mesh).secrets;
    for (const input of secretInputs(mesh.mesh)) {
      lines.push(`export TF_VAR_${input.variable}=${shellQuote(secrets[input.secret])}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/**
 * The secret variables as HCL assignments (heredocs for PEM), to paste into a Terraform Cloud variable set
 * as sensitive Terraform variables, or to pass to `terraform -var-file` from a protected location.
 */
export function secretsAsTfvars(store: SecretStore, meshes: readonly MeshManifest[]): string {
  const lines: string[] = [];
  for (const mesh of meshes) {
    const secrets = store.ensure(mesh.mesh).secrets;
    for (const input of secretInputs(mesh.mesh)) {
      const value = secrets[input.secret];
      if (value.includes('\n')) {
        lines.push(`${input.variable} = <<-EOT\n${value.trimEnd()}\nEOT`);
      } else {
        lines.push(`${input.variable} = ${JSON.stringify(value)}`);
      }
    }
  }
  return `${lines.join('\n')}\n`;
}
