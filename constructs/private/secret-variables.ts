import { Construct } from 'constructs';
import { TerraformVariable } from './engine';
import { secretInputs } from './secret-inputs';
import type { MeshSecrets } from '../secret-store';

/** Terraform validation of each secret's shape, so a wrong value fails at plan with a clear message. */
const SHAPES: { readonly [K in keyof MeshSecrets]: { readonly regex: string; readonly what: string } } = {
  serverCaCertificatePem: { regex: '-----BEGIN CERTIFICATE-----', what: 'a PEM certificate' },
  serverCaPrivateKeyPem: { regex: '-----BEGIN (RSA |EC )?PRIVATE KEY-----', what: 'a PEM private key' },
  gossipKey: { regex: '^[A-Za-z0-9+/]{43}=$', what: '32 bytes of base64 (consul keygen)' },
  aclBootstrapToken: {
    regex: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
    what: 'a UUID',
  },
};

/**
 * The mesh's shared secrets as sensitive input variables of one stack. Their values come from meshform's
 * secret store at deploy time (`meshform secrets env` exports them as TF_VAR_*), never from the synth output.
 */
export class SecretVariables extends Construct {
  private readonly variables = new Map<keyof MeshSecrets, TerraformVariable>();

  constructor(scope: Construct, id: string, mesh: string) {
    super(scope, id);
    for (const input of secretInputs(mesh)) {
      const shape = SHAPES[input.secret];
      const variable = new TerraformVariable(this, input.variable, {
        type: 'string',
        sensitive: true,
        nullable: false,
        description: `${input.description}. Comes from meshform's secret store: export it with \`meshform secrets env\``,
        validation: [
          {
            condition: `\${can(regex("${shape.regex}", var.${input.variable}))}`,
            errorMessage: `${input.variable} must be ${shape.what}: export it from meshform's secret store with \`meshform secrets env\`.`,
          },
        ],
      });
      variable.overrideLogicalId(input.variable);
      this.variables.set(input.secret, variable);
    }
  }

  /** A Terraform expression for a secret's value. */
  public value(secret: keyof MeshSecrets): string {
    return this.variables.get(secret)!.stringValue;
  }
}
