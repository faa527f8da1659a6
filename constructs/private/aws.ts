import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { Construct } from 'constructs';
import { Fn } from './engine';

/** Tags every AWS resource of a mesh carries (provider default tags): how a mesh's resources are found. */
export function meshTags(mesh: string, datacenter: string): { [key: string]: string } {
  return { 'meshform:mesh': mesh, 'meshform:datacenter': datacenter, 'managed-by': 'meshform' };
}

/** The AWS services meshform's stacks call: each gets the endpoint in endpoint mode. */
export const AWS_SERVICES = [
  'ec2',
  'elbv2',
  'iam',
  'kms',
  'logs',
  'route53',
  'secretsmanager',
  'sts',
  'eks',
  'ssm',
  's3',
] as const;

/**
 * The AWS provider of a meshform stack: one region, the mesh's default tags, and, in endpoint mode (an
 * emulator such as LocalStack), the endpoint for every service with the skips an emulator needs. The one
 * place meshform creates an AWS provider; `alias` makes a second one (another region) beside a stack's own.
 */
export function awsProvider(
  scope: Construct,
  region: string,
  mesh: string,
  datacenter: string,
  endpoint?: string,
  alias?: string,
): AwsProvider {
  return new AwsProvider(scope, alias ? `aws-${alias}` : 'aws', {
    ...(alias ? { alias } : {}),
    region,
    defaultTags: [{ tags: meshTags(mesh, datacenter) }],
    ...(endpoint
      ? {
          endpoints: [Object.fromEntries(AWS_SERVICES.map((s) => [s, endpoint]))],
          skipCredentialsValidation: true,
          // The account id is asked of the endpoint (STS GetCallerIdentity), not skipped: the provider compares
          // owner ids with it (a rule referencing a security group would otherwise read back as
          // "<account>/<sg-id>" and drift forever) and builds ARNs with it.
          skipMetadataApiCheck: 'true',
          skipRegionValidation: true,
          s3UsePathStyle: true,
        }
      : {}),
  });
}

/** A JSON IAM policy document (rendered by Terraform's jsonencode, so tokens resolve inside it). */
export interface PolicyStatement {
  readonly Sid?: string;
  readonly Effect: 'Allow' | 'Deny';
  readonly Action: string | string[];
  readonly Resource?: string | string[];
  readonly Principal?: { readonly [kind: string]: string | string[] };
  readonly Condition?: { readonly [op: string]: { readonly [key: string]: string | string[] } };
}

/** An IAM policy (or trust policy) document as a Terraform expression. */
export function policyDocument(statements: readonly PolicyStatement[]): string {
  return Fn.jsonencode({ Version: '2012-10-17', Statement: statements });
}

/** A trust policy letting an AWS service assume a role. */
export function serviceTrustPolicy(service: string, actions: string[] = ['sts:AssumeRole']): string {
  return policyDocument([{ Effect: 'Allow', Principal: { Service: service }, Action: actions }]);
}

/** ARN of an AWS managed policy. */
export function managedPolicyArn(name: string): string {
  return `arn:aws:iam::aws:policy/${name}`;
}
