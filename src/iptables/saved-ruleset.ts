// iptables-save text -> the IR, every rule normalised as the diff reads it (rules asgc does not
// model stay opaque), for questions about a live state (asgc check --saved).
import type { Chain, Policy, Ruleset } from '../ir/ruleset.js';
import type { Family } from '../model/address.js';
import { type Result, fail, ok } from '../model/result.js';
import { parseRuleSpec } from './rule-parse.js';
import { formatSaveErrors, parseSaveText, savedTables } from './save-file.js';

export function rulesetFromSaveText(text: string, family: Family, file: string): Result<Ruleset, string[]> {
  const parsed = parseSaveText(text);
  if (!parsed.ok) return fail(formatSaveErrors(file, parsed.error));
  const tables = [...savedTables(parsed.value).values()].map((table) => {
    const isUserChain = (name: string) => table.chains.has(name) && table.chains.get(name)?.policy === '-';
    const chains: Chain[] = [...table.chains.values()].map((chain) => ({
      name: chain.name,
      ...(chain.policy !== '-' && { policy: chain.policy as Policy }),
      rules: chain.specs.map((spec) => parseRuleSpec(spec, family, isUserChain)),
    }));
    return { name: table.name, chains };
  });
  return ok({ family, tables });
}
