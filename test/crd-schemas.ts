import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv, { ValidateFunction } from 'ajv';
import { REPO } from './support';

const DIR = path.join(REPO, 'test', 'fixtures', 'consul-k8s-2.0.3-crds');

/**
 * An OpenAPI schema as the API server applies it: an object schema with `properties` takes only those
 * properties (Kubernetes prunes unknown fields of structural schemas, which would silently drop what we
 * meant to set), unless it says `x-kubernetes-preserve-unknown-fields`.
 */
export function closed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closed);
  if (schema === null || typeof schema !== 'object') return schema;
  const node = Object.fromEntries(
    Object.entries(schema as { [key: string]: unknown }).map(([k, v]) => [
      k,
      k === 'properties'
        ? Object.fromEntries(Object.entries(v as object).map(([pk, pv]) => [pk, closed(pv)]))
        : closed(v),
    ]),
  );
  if (
    node.properties &&
    node.additionalProperties === undefined &&
    node['x-kubernetes-preserve-unknown-fields'] !== true
  )
    node.additionalProperties = false;
  return node;
}

function compiler(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: true, strictSchema: true });
  for (const keyword of [
    'x-kubernetes-preserve-unknown-fields',
    'x-kubernetes-int-or-string',
    'x-kubernetes-list-type',
    'x-kubernetes-map-type',
  ])
    ajv.addKeyword(keyword);
  for (const format of ['int32', 'int64', 'date-time', 'byte']) ajv.addFormat(format, true);
  return ajv;
}

/** The validator of every config-entry CRD meshform renders, by kind. */
export function crdValidators(): Map<string, { apiVersion: string; validate: ValidateFunction }> {
  const ajv = compiler();
  const validators = new Map<string, { apiVersion: string; validate: ValidateFunction }>();
  for (const file of fs.readdirSync(DIR).sort()) {
    const crd = JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8')) as {
      kind: string;
      apiVersion: string;
      schema: object;
    };
    validators.set(crd.kind, { apiVersion: crd.apiVersion, validate: ajv.compile(closed(crd.schema) as object) });
  }
  return validators;
}

/** Problems of a custom resource against its CRD schema (empty when it validates). */
export function crdProblems(
  validators: ReturnType<typeof crdValidators>,
  resource: { readonly [key: string]: unknown },
): string[] {
  const crd = validators.get(String(resource.kind));
  if (!crd) return [`no CRD schema for kind ${String(resource.kind)}`];
  if (resource.apiVersion !== crd.apiVersion)
    return [`apiVersion ${String(resource.apiVersion)} is not ${crd.apiVersion}`];
  return crd.validate(resource)
    ? []
    : (crd.validate.errors ?? []).map(
        (e) =>
          `${e.instancePath || '/'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`,
      );
}
