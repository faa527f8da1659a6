import { Construct } from 'constructs';
import { TerraformVariable, Token } from './engine';
import { SecretKind, secretsVersionVariable, stackSecretInputs } from './secret-inputs';

const UUID = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

/** Terraform validation of each secret's shape, so a wrong value fails at plan with a clear message. */
const SHAPES: {
  readonly [K in SecretKind]: { readonly regex: string; readonly what: string; readonly noKey?: boolean };
} = {
  gossipKey: { regex: '^[A-Za-z0-9+/]{43}=$', what: '32 bytes of base64 (consul keygen)' },
  aclBootstrapToken: { regex: UUID, what: 'a UUID' },
  aclReplicationToken: { regex: UUID, what: 'a UUID' },
  // certificates only: a private key pasted by mistake is refused before it reaches a cluster or a host
  caBundle: { regex: '^-----BEGIN CERTIFICATE-----', what: 'PEM certificates and no private key', noKey: true },
  serverChain: {
    regex: '^-----BEGIN CERTIFICATE-----',
    what: 'a PEM certificate chain and no private key',
    noKey: true,
  },
  serverKey: { regex: '^-----BEGIN (EC |RSA )?PRIVATE KEY-----', what: 'an unencrypted PEM private key' },
  clientApiChain: {
    regex: '^-----BEGIN CERTIFICATE-----',
    what: 'a PEM certificate chain and no private key',
    noKey: true,
  },
  clientApiKey: { regex: '^-----BEGIN (EC |RSA )?PRIVATE KEY-----', what: 'an unencrypted PEM private key' },
};

/**
 * The secrets one datacenter stack needs, as sensitive, ephemeral input variables: the gossip key, the
 * replication token (and on the primary the management token) and the datacenter's own TLS material. Their
 * values come from meshform's secret store at deploy time (`meshform secrets env` exports them as TF_VAR_*),
 * never from the synth output. Ephemeral (Terraform 1.10+): Terraform keeps them out of saved plans and state,
 * and lets them reach only write-only arguments, so a secret cannot land in state by mistake. With them
 * comes the datacenter's secrets version (`revision`), which drives the write-only arguments' versions.
 */
export class SecretVariables extends Construct {
  private readonly variables = new Map<SecretKind, TerraformVariable>();
  private readonly version: TerraformVariable;

  /** @param clientApi the datacenter's client agents get a local API certificate (VM datacenters) */
  constructor(scope: Construct, id: string, mesh: string, datacenter: string, primary: boolean, clientApi = false) {
    super(scope, id);
    for (const input of stackSecretInputs(mesh, { name: datacenter, clientApi }, primary)) {
      const shape = SHAPES[input.kind];
      const variable = new TerraformVariable(this, input.variable, {
        type: 'string',
        sensitive: true,
        nullable: false,
        description: `${input.description}. Comes from meshform's secret store: export it with \`meshform secrets env\``,
        validation: [
          {
            condition: shape.noKey
              ? `\${can(regex("${shape.regex}", var.${input.variable})) && !can(regex("PRIVATE KEY", var.${input.variable}))}`
              : `\${can(regex("${shape.regex}", var.${input.variable}))}`,
            errorMessage: `${input.variable} must be ${shape.what}: export it from meshform's secret store with \`meshform secrets env\`.`,
          },
        ],
      });
      variable.overrideLogicalId(input.variable);
      variable.addOverride('ephemeral', true);
      this.variables.set(input.kind, variable);
    }
    const version = secretsVersionVariable(mesh, datacenter);
    this.version = new TerraformVariable(this, version, {
      type: 'number',
      nullable: false,
      description: `Version of ${datacenter}'s secrets in meshform's secret store (bumped when one changes; not a secret): export it with \`meshform secrets env\``,
      validation: [
        {
          condition: `\${var.${version} >= 1 && floor(var.${version}) == var.${version}}`,
          errorMessage: `${version} must be a whole number from 1: export it from meshform's secret store with \`meshform secrets env\`.`,
        },
      ],
    });
    this.version.overrideLogicalId(version);
  }

  /** The datacenter's secrets version: a number that changes whenever one of the stack's secrets does. */
  public get revision(): number {
    return Token.asNumber(this.version.numberValue);
  }

  /** The same version as a Terraform string expression (to combine with what else a write-only value holds). */
  public get revisionString(): string {
    return this.version.stringValue;
  }

  /** A Terraform expression for a secret's value; throws for a secret this stack does not hold. */
  public value(kind: SecretKind): string {
    const variable = this.variables.get(kind);
    if (!variable) throw new Error(`internal: the stack ${this.node.path} holds no ${kind} variable`);
    return variable.stringValue;
  }
}
