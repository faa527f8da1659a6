/** AWS Signature Version 4, for the few AWS API calls meshform makes itself (the integration tier, the Secrets Manager store). */
import { createHash, createHmac } from 'node:crypto';

/** Credentials to sign with. */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

/**
 * Returns `headers` plus `x-amz-date`, the session token if any, and `Authorization` for a request to `url`.
 * Header names are signed lower-cased, values with runs of spaces folded, as the specification says.
 */
export function signV4(
  request: {
    readonly method: string;
    readonly url: string;
    readonly headers: { readonly [name: string]: string };
    readonly body: string;
  },
  credentials: AwsCredentials,
  region: string,
  service: string,
  now: Date = new Date(),
): { [name: string]: string } {
  const url = new URL(request.url);
  const amzDate = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const date = amzDate.slice(0, 8);
  const headers: { [name: string]: string } = {
    ...request.headers,
    'x-amz-date': amzDate,
    ...(credentials.sessionToken ? { 'x-amz-security-token': credentials.sessionToken } : {}),
  };
  const canonicalHeaders = Object.entries({
    ...Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v.trim().replace(/\s+/g, ' ')])),
    host: url.host,
  }).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const signed = canonicalHeaders.map(([k]) => k).join(';');
  const query = [...url.searchParams.entries()]
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .sort()
    .join('&');
  const canonical = [
    request.method,
    url.pathname || '/',
    query,
    canonicalHeaders.map(([k, v]) => `${k}:${v}\n`).join(''),
    signed,
    sha256(request.body),
  ].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, date), region), service), 'aws4_request');
  const signature = createHmac('sha256', key).update(toSign).digest('hex');
  return {
    ...headers,
    Authorization: `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signed}, Signature=${signature}`,
  };
}

/** A resource the Resource Groups Tagging API lists. */
export interface TaggedResource {
  readonly arn: string;
  readonly tags: { readonly [key: string]: string };
}

/**
 * Every resource carrying all of `tags`, through the Resource Groups Tagging API (`GetResources`, all pages) at
 * `endpoint` (an emulator) or AWS's regional endpoint.
 */
export async function taggedResources(
  tags: { readonly [key: string]: string },
  options: { readonly region: string; readonly endpoint?: string; readonly credentials: AwsCredentials },
): Promise<TaggedResource[]> {
  const url = options.endpoint
    ? `${options.endpoint.replace(/\/$/, '')}/`
    : `https://tagging.${options.region}.amazonaws.com/`;
  const found: TaggedResource[] = [];
  let token = '';
  for (let page = 0; page < 100; page++) {
    const body = JSON.stringify({
      TagFilters: Object.entries(tags).map(([Key, v]) => ({ Key, Values: [v] })),
      ResourcesPerPage: 100,
      ...(token ? { PaginationToken: token } : {}),
    });
    const headers = signV4(
      {
        method: 'POST',
        url,
        headers: {
          'content-type': 'application/x-amz-json-1.1',
          'x-amz-target': 'ResourceGroupsTaggingAPI_20170126.GetResources',
        },
        body,
      },
      options.credentials,
      options.region,
      'tagging',
    );
    const response = await fetch(url, { method: 'POST', headers, body });
    if (!response.ok) throw new Error(`GetResources: HTTP ${response.status} ${(await response.text()).slice(0, 200)}`);
    const result = (await response.json()) as {
      ResourceTagMappingList?: { ResourceARN: string; Tags?: { Key: string; Value: string }[] }[];
      PaginationToken?: string;
    };
    for (const r of result.ResourceTagMappingList ?? [])
      found.push({ arn: r.ResourceARN, tags: Object.fromEntries((r.Tags ?? []).map((t) => [t.Key, t.Value])) });
    token = result.PaginationToken ?? '';
    if (!token) break;
  }
  return found;
}
