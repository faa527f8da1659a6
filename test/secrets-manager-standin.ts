/**
 * A stand-in AWS Secrets Manager on 127.0.0.1 speaking its JSON protocol (POST /, `X-Amz-Target:
 * secretsmanager.<Action>`, `application/x-amz-json-1.1`), for the calls meshform's store makes and a few to
 * inspect it: CreateSecret, GetSecretValue, PutSecretValue, UpdateSecretVersionStage, DescribeSecret,
 * ListSecrets. Version labels behave as AWS documents them (and moto implements them: getmoto/moto
 * moto/secretsmanager/models.py): PutSecretValue without VersionStages makes the new version AWSCURRENT (the
 * old one AWSPREVIOUS); with VersionStages it only moves those labels; UpdateSecretVersionStage refuses to
 * move AWSCURRENT unless RemoveFromVersionId names the version that carries it (InvalidParameterException).
 * A request must carry a SigV4 Authorization header with the configured access key id
 * (UnrecognizedClientException otherwise). Errors are HTTP 400 with `__type` and `message`.
 *
 * `GET /__standin/state` (tests only) returns every secret with its versions.
 */
import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import { readBody, StandinProcess, startStandin } from './standin-process';

/** What the stand-in accepts. */
export interface SecretsManagerStandinConfig {
  readonly accessKeyId: string;
  readonly region: string;
}

interface Version {
  readonly id: string;
  readonly binary?: string;
  readonly string?: string;
  stages: string[];
}

/** The stand-in's state: secrets by name. */
export interface SecretsManagerStandinState {
  readonly secrets: { [name: string]: { versions: Version[] } };
}

/** Starts the stand-in in its own process. */
export function startSecretsManagerStandin(config: SecretsManagerStandinConfig): Promise<StandinProcess> {
  return startStandin('secrets-manager-standin.ts', config);
}

class Refusal {
  constructor(
    public readonly type: string,
    public readonly message: string,
  ) {}
}

function serve(config: SecretsManagerStandinConfig): void {
  const state: SecretsManagerStandinState = { secrets: {} };
  const arn = (name: string) => `arn:aws:secretsmanager:${config.region}:123456789012:secret:${name}-AbCdEf`;
  const find = (id: unknown) => {
    const name = Object.keys(state.secrets).find((n) => n === id || arn(n) === id);
    if (!name) throw new Refusal('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
    return { name, secret: state.secrets[name]! };
  };
  const addVersion = (secret: { versions: Version[] }, input: any, stages: string[]): Version => {
    if (input.SecretBinary === undefined && input.SecretString === undefined)
      throw new Refusal('InvalidRequestException', 'You must provide either SecretString or SecretBinary.');
    const id = typeof input.ClientRequestToken === 'string' ? input.ClientRequestToken : randomUUID();
    const same = secret.versions.find((v) => v.id === id);
    if (same) return same;
    if (stages.includes('AWSCURRENT')) {
      for (const v of secret.versions) v.stages = v.stages.filter((s) => s !== 'AWSPREVIOUS');
      for (const v of secret.versions)
        if (v.stages.includes('AWSCURRENT')) v.stages = [...v.stages.filter((s) => s !== 'AWSCURRENT'), 'AWSPREVIOUS'];
    }
    for (const v of secret.versions) v.stages = v.stages.filter((s) => s === 'AWSPREVIOUS' || !stages.includes(s));
    const version: Version = {
      id,
      ...(input.SecretBinary !== undefined ? { binary: input.SecretBinary } : { string: input.SecretString }),
      stages: [...stages],
    };
    secret.versions.push(version);
    return version;
  };
  const actions: { [action: string]: (input: any) => unknown } = {
    CreateSecret: (input) => {
      if (typeof input.Name !== 'string') throw new Refusal('InvalidParameterException', 'Name is required');
      if (state.secrets[input.Name])
        throw new Refusal(
          'ResourceExistsException',
          `The operation failed because the secret ${input.Name} already exists.`,
        );
      const secret = { versions: [] as Version[] };
      state.secrets[input.Name] = secret;
      const version = addVersion(secret, input, ['AWSCURRENT']);
      return { ARN: arn(input.Name), Name: input.Name, VersionId: version.id };
    },
    GetSecretValue: (input) => {
      const { name, secret } = find(input.SecretId);
      const version = input.VersionId
        ? secret.versions.find((v) => v.id === input.VersionId)
        : secret.versions.find((v) => v.stages.includes(input.VersionStage ?? 'AWSCURRENT'));
      if (!version)
        throw new Refusal('ResourceNotFoundException', "Secrets Manager can't find the specified secret value.");
      return {
        ARN: arn(name),
        Name: name,
        VersionId: version.id,
        ...(version.binary !== undefined ? { SecretBinary: version.binary } : { SecretString: version.string }),
        VersionStages: version.stages,
        CreatedDate: 1_700_000_000,
      };
    },
    PutSecretValue: (input) => {
      const { name, secret } = find(input.SecretId);
      const version = addVersion(
        secret,
        input,
        Array.isArray(input.VersionStages) ? input.VersionStages : ['AWSCURRENT'],
      );
      return { ARN: arn(name), Name: name, VersionId: version.id, VersionStages: version.stages };
    },
    UpdateSecretVersionStage: (input) => {
      const { name, secret } = find(input.SecretId);
      const stage = String(input.VersionStage);
      const carrier = secret.versions.find((v) => v.stages.includes(stage));
      if (carrier && carrier.id !== input.MoveToVersionId && carrier.id !== input.RemoveFromVersionId)
        throw new Refusal(
          'InvalidParameterException',
          `The parameter RemoveFromVersionId can't be empty. Staging label ${stage} is currently attached to version ${carrier.id}, so you must explicitly reference that version in RemoveFromVersionId.`,
        );
      if (input.RemoveFromVersionId !== undefined) {
        const from = secret.versions.find((v) => v.id === input.RemoveFromVersionId);
        if (!from) throw new Refusal('InvalidParameterException', `Not a valid version: ${input.RemoveFromVersionId}`);
        if (!from.stages.includes(stage))
          throw new Refusal(
            'InvalidParameterException',
            `Version stage ${stage} not found in version ${input.RemoveFromVersionId}`,
          );
        from.stages = from.stages.filter((s) => s !== stage);
        if (stage === 'AWSCURRENT') {
          for (const v of secret.versions) v.stages = v.stages.filter((s) => s !== 'AWSPREVIOUS');
          from.stages.push('AWSPREVIOUS');
        }
      }
      if (input.MoveToVersionId !== undefined) {
        const to = secret.versions.find((v) => v.id === input.MoveToVersionId);
        if (!to) throw new Refusal('InvalidParameterException', `Not a valid version: ${input.MoveToVersionId}`);
        if (!to.stages.includes(stage)) to.stages.push(stage);
      }
      return { ARN: arn(name), Name: name };
    },
    DescribeSecret: (input) => {
      const { name, secret } = find(input.SecretId);
      return {
        ARN: arn(name),
        Name: name,
        VersionIdsToStages: Object.fromEntries(secret.versions.map((v) => [v.id, v.stages])),
      };
    },
    ListSecrets: () => ({ SecretList: Object.keys(state.secrets).map((name) => ({ ARN: arn(name), Name: name })) }),
  };

  const server = http.createServer(async (request, response) => {
    const body = await readBody(request);
    const send = (status: number, json: unknown) => {
      response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
      response.end(JSON.stringify(json));
    };
    if (request.url === '/__standin/state') return send(200, state);
    try {
      const auth = String(request.headers.authorization ?? '');
      if (
        !auth.startsWith(`AWS4-HMAC-SHA256 Credential=${config.accessKeyId}/`) ||
        !/Signature=[0-9a-f]{64}$/.test(auth)
      )
        throw new Refusal('UnrecognizedClientException', 'The security token included in the request is invalid.');
      const target = String(request.headers['x-amz-target'] ?? '');
      const action = actions[target.replace(/^secretsmanager\./, '')];
      if (!target.startsWith('secretsmanager.') || !action)
        throw new Refusal('InvalidAction', `unknown target ${target}`);
      send(200, action(JSON.parse(body || '{}')));
    } catch (e) {
      if (!(e instanceof Refusal)) throw e;
      send(400, { __type: e.type, message: e.message });
    }
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`listening on ${(server.address() as import('node:net').AddressInfo).port}\n`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

if (require.main === module) serve(JSON.parse(process.argv[2]!) as SecretsManagerStandinConfig);
