import { Fn, Op, Token } from './engine';

// Apart from acl.ts (which the CLI loads too, and which therefore needs no cdktf): only the stacks build Terraform
// expressions.

/**
 * `deriveTokenUuid` of acl.ts as a Terraform expression of the management token variable, so that Terraform
 * derives on AWS hosts the same ids the CLI derives for your own hosts.
 */
export function deriveTokenExpression(management: string, label: string): string {
  const h = Fn.sha256(Token.asString(Fn.format('%s/meshform/%s', [management, label])));
  const variant = Fn.element(['8', '9', 'a', 'b'], Op.mod(Fn.parseint(Fn.substr(h, 16, 1), 16), 4));
  return Token.asString(
    Fn.format('%s-%s-4%s-%s%s-%s', [
      Fn.substr(h, 0, 8),
      Fn.substr(h, 8, 4),
      Fn.substr(h, 13, 3),
      variant,
      Fn.substr(h, 17, 3),
      Fn.substr(h, 20, 12),
    ]),
  );
}
