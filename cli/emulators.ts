/**
 * The AWS emulators the integration tier knows, how it recognises them, and the one list of where each one
 * differs from AWS: the APIs it lacks (those resources are not applied; their stack is validated and planned
 * whole instead) and the attributes it reports differently (ignored, narrowly, in the tier's working copy).
 * Every entry names its evidence: the emulator source that behaves differently, and the provider code that reads
 * it. Nothing here changes what meshform synthesizes.
 */

/** The resources of one type an emulator cannot create: it lacks their API. */
export interface MissingApi {
  /** Terraform resource type, e.g. `aws_eks_addon`. */
  readonly resourceType: string;
  /** The API calls that are missing. */
  readonly api: string;
  /** Where the emulator's source shows it (repository, file, function or route table). */
  readonly evidence: string;
}

/** A stack resource's synthesized configuration (a resource body of cdk.tf.json). */
export type ResourceConfig = { readonly [attribute: string]: unknown };

/** An attribute an emulator reports differently from AWS, so the provider reads back a value AWS would not give. */
export interface AttributeQuirk {
  /** Terraform resource type, e.g. `aws_instance`. */
  readonly resourceType: string;
  /** The top-level attribute or block read back differently (what `ignore_changes` names). */
  readonly attribute: string;
  /** Only resources whose configuration makes the quirk show (narrower than the whole type). */
  readonly applies: (config: ResourceConfig) => boolean;
  /** What differs: the emulator source, what AWS does, and the provider code that reads it. */
  readonly evidence: string;
}

/**
 * A destroy error an emulator gives where AWS gives one the provider takes as "already deleted": the destroy is
 * run once more (its refresh then finds the resource gone) instead of failing the stack.
 */
export interface DestroyQuirk {
  /** The resource types whose deletion can fail so. */
  readonly resourceTypes: readonly string[];
  /** Matches one error of Terraform's output, from its `Error:` line to the end of its box. */
  readonly error: RegExp;
  /** What differs: the emulator source, what AWS answers, and the provider code that handles AWS's answer. */
  readonly evidence: string;
}

/** An emulator the tier recognises, with its differences from AWS. */
export interface EmulatorProfile {
  /** How the report names it. */
  readonly name: string;
  /** The upstream source the evidence below was read in. */
  readonly source: string;
  /** The resource types it cannot create. */
  readonly missingApis: readonly MissingApi[];
  /** The attributes it reports differently from AWS. */
  readonly quirks: readonly AttributeQuirk[];
  /** The destroy errors it gives where AWS would not fail. */
  readonly destroyQuirks: readonly DestroyQuirk[];
}

const MOTO_SOURCE = 'getmoto/moto 5.2.4.dev (commit 0af643a5d)';
const PROVIDER = 'hashicorp/terraform-provider-aws';

/** moto's server (`python -m moto.server`), read at MOTO_SOURCE. */
export const MOTO: EmulatorProfile = {
  name: 'moto',
  source: MOTO_SOURCE,
  missingApis: [
    {
      resourceType: 'aws_eks_addon',
      api: 'EKS CreateAddon/DescribeAddon/DeleteAddon',
      evidence:
        'moto/eks/urls.py routes no /clusters/{name}/addons path and moto/eks/responses.py (EKSResponse) has no ' +
        'create_addon: the call gets a 404 HTML page',
    },
    {
      resourceType: 'aws_eks_pod_identity_association',
      api: 'EKS CreatePodIdentityAssociation/DescribePodIdentityAssociation/DeletePodIdentityAssociation',
      evidence:
        'moto/eks/urls.py routes no /clusters/{name}/pod-identity-associations path and moto/eks/responses.py ' +
        '(EKSResponse) has no create_pod_identity_association: the call gets a 404 HTML page',
    },
  ],
  quirks: [
    {
      resourceType: 'aws_instance',
      attribute: 'associate_public_ip_address',
      applies: (config) => config.associate_public_ip_address === false,
      evidence:
        'moto/ec2/models/elastic_network_interfaces.py NetworkInterface.association returns {} (not None) for an ' +
        'interface without a public IP, so DescribeInstances carries an empty <association/>; AWS omits it. ' +
        `${PROVIDER} internal/service/ec2/ec2_instance.go (resourceInstanceRead) sets associate_public_ip_address ` +
        'to "primary interface Association != nil", reads true, and plans a replacement',
    },
    {
      resourceType: 'aws_instance',
      attribute: 'vpc_security_group_ids',
      // the provider launches through a NetworkInterfaces spec (groups on the interface) when
      // associate_public_ip_address is set on an instance in a subnet
      applies: (config) => config.associate_public_ip_address !== undefined && config.subnet_id !== undefined,
      evidence:
        'moto/ec2/models/instances.py (InstanceBackend.run_instances, Instance.prep_nics) keeps the groups of a ' +
        'NetworkInterfaces launch spec on the interface only, so the instance-level groupSet is empty; AWS ' +
        `reports the primary interface's groups there. ${PROVIDER} internal/service/ec2/ec2_instance.go ` +
        '(readSecurityGroups) reads vpc_security_group_ids from the instance-level groups',
    },
    {
      resourceType: 'aws_launch_template',
      attribute: 'tag_specifications',
      // the provider sends the template's own tags (tags_all: every meshform stack has provider default tags)
      applies: () => true,
      evidence:
        "moto/ec2/responses/launch_templates.py (LaunchTemplates.create_launch_template) appends the request's " +
        'top-level TagSpecifications (the template\'s own tags, resource type "launch-template") to ' +
        'LaunchTemplateData.TagSpecifications, so every version reads back an extra tag_specifications block; ' +
        `AWS keeps the two apart. ${PROVIDER} internal/service/ec2/ec2_launch_template.go reads ` +
        'tag_specifications from the version data',
    },
    {
      resourceType: 'aws_eks_cluster',
      attribute: 'access_config',
      applies: (config) => config.access_config !== undefined,
      evidence:
        'moto/eks/responses.py (EKSResponse.create_cluster) and moto/eks/models.py (Cluster) ignore accessConfig, ' +
        'so DescribeCluster returns none; AWS returns the authentication mode. ' +
        `${PROVIDER} internal/service/eks/cluster.go reads access_config from it (bootstrap_cluster_creator_admin_` +
        'permissions forces a replacement)',
    },
    {
      resourceType: 'aws_eks_node_group',
      attribute: 'remote_access',
      applies: (config) => config.remote_access === undefined,
      evidence:
        'moto/eks/models.py (Nodegroup.__init__) fills remoteAccess with DEFAULT_REMOTE_ACCESS ' +
        '{"ec2SshKey": "eksKeypair"} when none is given; AWS returns none. ' +
        `${PROVIDER} internal/service/eks/node_group.go reads remote_access (it forces a replacement)`,
    },
    {
      resourceType: 'aws_eks_node_group',
      attribute: 'update_config',
      applies: (config) => config.update_config !== undefined,
      evidence:
        'moto/eks/responses.py (EKSResponse.create_nodegroup) does not read updateConfig (only ' +
        'update_nodegroup_config does), so DescribeNodegroup returns none; AWS returns it. ' +
        `${PROVIDER} internal/service/eks/node_group.go reads update_config from it`,
    },
    ...['aws_vpc_security_group_ingress_rule', 'aws_vpc_security_group_egress_rule'].map(
      (resourceType): AttributeQuirk => ({
        resourceType,
        attribute: 'description',
        applies: (config) => config.referenced_security_group_id !== undefined && config.description !== undefined,
        evidence:
          "moto/ec2/models/security_groups.py SecurityGroupRule.description returns only the CIDR range's " +
          'Description: a rule referencing a security group keeps its description in source_group and ' +
          'DescribeSecurityGroupRules returns none; AWS returns it. ' +
          `${PROVIDER} internal/service/ec2/vpc_security_group_ingress_rule.go reads description from that call`,
      }),
    ),
  ],
  destroyQuirks: [
    {
      resourceTypes: ['aws_vpc_security_group_ingress_rule', 'aws_vpc_security_group_egress_rule'],
      error: /^Error: deleting VPC Security Group Rule \(sgr-[0-9a-f]+\)[\s\S]*\bInvalidPermission\.NotFound\b/,
      evidence:
        'moto/ec2/models/security_groups.py (revoke_security_group_ingress, revoke_security_group_egress) answers ' +
        'a rule id its group no longer holds with InvalidPermission.NotFound; AWS answers ' +
        `InvalidSecurityGroupRuleId.NotFound (moto's own DescribeSecurityGroupRules does too), which ${PROVIDER} ` +
        'internal/service/ec2/vpc_security_group_ingress_rule.go (securityGroupRuleResource.Delete) takes as ' +
        'already deleted. Seen on 3 of 12 destroys of a VM stack on a loaded machine, a rule being gone ' +
        'when its revoke arrived',
    },
  ],
};

/**
 * The errors of Terraform's human output, each from its `Error:` line to the end of its box, without the box.
 */
export function terraformErrors(output: string): string[] {
  const errors: string[] = [];
  let current: string[] | undefined;
  for (const raw of output.split('\n')) {
    if (raw.startsWith('╵')) current = undefined;
    const line = raw.replace(/^[│╷╵]\s?/, '');
    if (line.startsWith('Error: ')) errors.push((current = [line]).join('\n'));
    else if (current) {
      current.push(line);
      errors[errors.length - 1] = current.join('\n');
    }
  }
  return errors.map((e) => e.trim());
}

/**
 * The destroy quirks of `emulator` that explain every error of a failed destroy's output, or undefined when an
 * error is none of them (or there is no error to explain).
 */
export function destroyQuirks(output: string, emulator: EmulatorProfile | undefined): DestroyQuirk[] | undefined {
  const errors = terraformErrors(output);
  const matched = errors.map((e) => emulator?.destroyQuirks.find((q) => q.error.test(e)));
  return errors.length && matched.every((q) => q !== undefined) ? [...new Set(matched as DestroyQuirk[])] : undefined;
}

/**
 * Recognises the emulator behind `endpoint`, or undefined: moto answers GET `/moto-api/config` with its JSON
 * configuration (moto/moto_api/_internal/urls.py, MotoAPIResponse.config).
 */
export async function detectEmulator(endpoint: string): Promise<EmulatorProfile | undefined> {
  try {
    const response = await fetch(new URL('/moto-api/config', endpoint), { signal: AbortSignal.timeout(5000) });
    if (!response.ok || !response.headers.get('content-type')?.includes('json')) return undefined;
    const body: unknown = await response.json();
    return body !== null && typeof body === 'object' && !Array.isArray(body) ? MOTO : undefined;
  } catch {
    return undefined;
  }
}

interface ResourcesJson {
  readonly resource?: { readonly [type: string]: { readonly [name: string]: ResourceConfig } };
}

/** Every resource of a stack: its address and configuration. */
function resources(json: ResourcesJson): { address: string; type: string; config: ResourceConfig }[] {
  return Object.entries(json.resource ?? {}).flatMap(([type, byName]) =>
    Object.entries(byName).map(([name, config]) => ({ address: `${type}.${name}`, type, config })),
  );
}

/** A resource the tier leaves out, and why. */
export interface NotApplied {
  readonly address: string;
  readonly reason: string;
}

/**
 * The resources of a stack `emulator` cannot create: those whose API it lacks, and those that depend on one of
 * them (a reference or depends_on), since Terraform would pull the missing one in.
 */
export function unsupportedResources(json: ResourcesJson, emulator: EmulatorProfile | undefined): NotApplied[] {
  if (!emulator) return [];
  const all = resources(json);
  const addresses = new Set(all.map((r) => r.address));
  const dependsOn = new Map(
    all.map((r) => {
      const text = JSON.stringify(r.config);
      const refs = new Set<string>();
      for (const m of text.matchAll(/\b([a-z][a-z0-9_]*\.[A-Za-z0-9_-]+)/g)) if (addresses.has(m[1]!)) refs.add(m[1]!);
      refs.delete(r.address);
      return [r.address, refs] as const;
    }),
  );
  const reasons = new Map<string, string>();
  for (const r of all) {
    const missing = emulator.missingApis.find((m) => m.resourceType === r.type);
    if (missing) reasons.set(r.address, `${emulator.name} lacks ${missing.api} (${missing.evidence})`);
  }
  for (let grown = true; grown; ) {
    grown = false;
    for (const r of all) {
      if (reasons.has(r.address)) continue;
      const on = [...dependsOn.get(r.address)!].find((d) => reasons.has(d));
      if (on) {
        reasons.set(r.address, `depends on ${on}, which ${emulator.name} cannot create`);
        grown = true;
      }
    }
  }
  return all
    .filter((r) => reasons.has(r.address))
    .map((r) => ({ address: r.address, reason: reasons.get(r.address)! }));
}

/** An attribute the tier ignores on one resource, and why. */
export interface FilteredAttribute {
  readonly address: string;
  readonly attribute: string;
  readonly evidence: string;
}

/**
 * The override file (Terraform override semantics: merged into the tier's working copy only) that makes the
 * resources hit by one of `emulator`'s quirks ignore that attribute after create (`lifecycle.ignore_changes`, kept
 * together with any the stack declares), and the list of what it filters. Undefined when nothing is filtered.
 */
export function quirkOverride(
  json: ResourcesJson,
  emulator: EmulatorProfile | undefined,
): { override?: object; filtered: FilteredAttribute[] } {
  const filtered: FilteredAttribute[] = [];
  const resource: { [type: string]: { [name: string]: { lifecycle: { ignore_changes: string[] } } } } = {};
  for (const r of resources(json)) {
    const quirks = (emulator?.quirks ?? []).filter((q) => q.resourceType === r.type && q.applies(r.config));
    const declared = (r.config.lifecycle as { ignore_changes?: unknown } | undefined)?.ignore_changes;
    if (!quirks.length || declared === 'all') continue;
    const name = r.address.slice(r.type.length + 1);
    const own = Array.isArray(declared) ? (declared as string[]) : [];
    (resource[r.type] ??= {})[name] = {
      lifecycle: { ignore_changes: [...new Set([...own, ...quirks.map((q) => q.attribute)])] },
    };
    for (const q of quirks) filtered.push({ address: r.address, attribute: q.attribute, evidence: q.evidence });
  }
  return filtered.length ? { override: { resource }, filtered } : { filtered };
}
