// A plan -> the exact iptables-restore --noflush input: one transaction for the table, or two
// when chain deletions must wait until nothing refers to them at the start of a transaction
// (older nf_tables backends).
import { type Plan } from './plan.js';

export interface ScriptOptions {
  /** Put `-X` of deleted chains in a second transaction. */
  readonly separateDeletions?: boolean;
}

export function renderPlanScripts(plan: Plan, options: ScriptOptions = {}): string[] {
  const lines = [`*${plan.table}`];
  for (const change of plan.chains) {
    if (change.kind === 'create' || change.kind === 'rewrite') lines.push(`:${change.chain} - [0:0]`);
  }
  for (const change of plan.chains) {
    if (change.kind === 'create' || change.kind === 'rewrite') {
      for (const rule of change.rules) lines.push(rule === '' ? `-A ${change.chain}` : `-A ${change.chain} ${rule}`);
    }
  }
  for (const change of plan.chains) {
    if (change.kind !== 'edit') continue;
    for (const edit of change.edits) {
      if (edit.op === 'delete') lines.push(`-D ${change.chain} ${edit.index}`);
      else if (edit.op === 'insert') lines.push(`-I ${change.chain} ${edit.index} ${edit.rule}`);
      else lines.push(edit.rule === '' ? `-A ${change.chain}` : `-A ${change.chain} ${edit.rule}`);
    }
  }
  for (const hook of plan.hooks) {
    // By full spec, never by index: other tools may have moved things in built-in chains.
    for (const rule of hook.remove) lines.push(`-D ${hook.chain} ${rule}`);
    hook.insert.forEach((rule, index) => lines.push(`-I ${hook.chain} ${index + 1} ${rule}`));
  }
  const deleted = plan.chains.filter((change) => change.kind === 'delete').map((change) => change.chain);
  for (const chain of deleted) lines.push(`-F ${chain}`);
  if (!options.separateDeletions) {
    for (const chain of deleted) lines.push(`-X ${chain}`);
    return [`${[...lines, 'COMMIT'].join('\n')}\n`];
  }
  const first = `${[...lines, 'COMMIT'].join('\n')}\n`;
  return deleted.length === 0
    ? [first]
    : [first, `${[`*${plan.table}`, ...deleted.map((chain) => `-X ${chain}`), 'COMMIT'].join('\n')}\n`];
}

/** Lines of restore input the plan takes (the cost measure for "minimal"). */
export function scriptLineCount(plan: Plan): number {
  return renderPlanScripts(plan).reduce((count, script) => count + script.split('\n').length - 3, 0);
}
