/**
 * The environment of every process meshform starts (the cdktf app, Terraform and its providers, `stty`): the
 * user's, without the secrets meshform itself reads from it. A root's passphrase unlocks the mesh's offline
 * root key; no child needs it, and a provider, a plugin or a crash log of Terraform must never see it.
 */

/** True for a variable meshform reads a secret from: `MESHFORM_CA_PASSPHRASE`, `MESHFORM_CA_PASSPHRASE_<ID>`, the import key's. */
export function isSecretVariable(name: string): boolean {
  return /^MESHFORM_CA_PASSPHRASE(_|$)/i.test(name) || /^MESHFORM_IMPORT_KEY_PASSPHRASE$/i.test(name);
}

/** The environment for a child process: meshform's own without its secrets, then `extra` on top. */
export function childEnvironment(extra: { readonly [name: string]: string | undefined } = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!isSecretVariable(name)) env[name] = value;
  for (const [name, value] of Object.entries(extra)) if (!isSecretVariable(name)) env[name] = value;
  return env;
}
