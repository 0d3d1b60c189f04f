// A plan for people: changes grouped per chain, `+` added, `-` removed.
import type { Plan } from './plan.js';

export function describePlan(plan: Plan): string {
  const out: string[] = [];
  const family = plan.table === 'filter' ? `IPv${plan.family}` : `IPv${plan.family} ${plan.table}`;
  for (const change of plan.chains) {
    switch (change.kind) {
      case 'create':
        out.push(
          `${family} ${change.chain}: new chain, ${change.rules.length} rules`,
          ...change.rules.map((rule) => `  + ${rule}`),
        );
        break;
      case 'rewrite':
        out.push(`${family} ${change.chain}: rewritten (${change.before.length} -> ${change.rules.length} rules)`);
        out.push(...change.before.filter((rule) => !change.rules.includes(rule)).map((rule) => `  - ${rule}`));
        out.push(...change.rules.filter((rule) => !change.before.includes(rule)).map((rule) => `  + ${rule}`));
        break;
      case 'edit': {
        const removed = change.edits.filter((edit) => edit.op === 'delete').length;
        out.push(`${family} ${change.chain}: ${removed} removed, ${change.edits.length - removed} added`);
        for (const edit of change.edits)
          out.push(edit.op === 'delete' ? `  - ${change.before[edit.index - 1]}` : `  + ${edit.rule}`);
        break;
      }
      case 'delete':
        out.push(`${family} ${change.chain}: deleted (${change.before.length} rules)`);
        break;
    }
  }
  for (const hook of plan.hooks) {
    out.push(
      `${family} ${hook.chain}: asgc's hook rules`,
      ...hook.remove.map((rule) => `  - ${rule}`),
      ...hook.insert.map((rule) => `  + ${rule}`),
    );
  }
  for (const { chain, referencedBy } of plan.kept)
    out.push(`${family} ${chain}: no longer wanted, but kept: foreign chain ${referencedBy} jumps to it`);
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}
