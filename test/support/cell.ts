// Small builders for cells in unit tests.
import { parseAddress } from '../../src/model/address.js';
import type { RawAsgRule, SecurityGroup } from '../../src/model/asg.js';
import { groupShares, validateAsgRule } from '../../src/model/asg.js';
import { type AsgcConfig, type CellPolicy, type Container, DEFAULT_CONFIG } from '../../src/model/cell.js';
import { compileCell } from '../../src/compile/compile.js';
import { renderCell } from '../../src/scenario/pipeline.js';

export function securityGroup(
  name: string,
  rules: RawAsgRule[],
  placement: Partial<Omit<SecurityGroup, 'rules' | 'name' | 'guid' | 'shares' | 'revision' | 'broken'>> = {},
): SecurityGroup {
  const guid = `guid-${name}`;
  const validated = rules.map((raw, ruleIndex) => {
    const { rule, errors } = validateAsgRule(raw, { groupGuid: guid, groupName: name, ruleIndex });
    if (!rule) throw new Error(`bad test rule: ${JSON.stringify(errors)}`);
    return rule;
  });
  return {
    guid,
    name,
    rules: validated,
    broken: false,
    revision: JSON.stringify(rules),
    shares: groupShares(validated),
    stagingDefault: false,
    runningDefault: false,
    stagingSpaceGuids: [],
    runningSpaceGuids: [],
    ...placement,
  };
}

export function container(handle: string, addresses: string[], fields: Partial<Container> = {}): Container {
  let result: Container = { handle, workload: 'app', spaceGuid: 'space-1', ports: [], ...fields };
  for (const text of addresses) {
    const parsed = parseAddress(text);
    if (!parsed.ok) throw new Error(parsed.error);
    result = parsed.value.family === 4 ? { ...result, ipv4: parsed.value.value } : { ...result, ipv6: parsed.value.value };
  }
  return result;
}

export function cell(
  securityGroups: SecurityGroup[],
  containers: Container[],
  config: Partial<AsgcConfig> = {},
  more: Partial<Pick<CellPolicy, 'policies' | 'endpoints'>> = {},
): CellPolicy {
  return { securityGroups, containers, policies: [], endpoints: new Map(), config: { ...DEFAULT_CONFIG, ...config }, ...more };
}

/**
 * Compile and render; throws on compile errors. The plain form (no optimiser) by default: these
 * tests are about the layout, rule by rule; the optimiser has tests of its own.
 */
export function compileText(policy: CellPolicy, { optimise = false } = {}): { 4: string; 6: string } {
  const compiled = compileCell(policy, { optimise });
  if (!compiled.ok) throw new Error(compiled.error.map((e) => e.message).join('\n'));
  return renderCell(compiled.value);
}

/** The -A lines of one chain (matched by name prefix), without "-A <chain> ". */
export function chainRules(text: string, chainPrefix: string): string[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`-A ${chainPrefix}`))
    .map((line) => line.slice(line.indexOf(' ', 3) + 1));
}
