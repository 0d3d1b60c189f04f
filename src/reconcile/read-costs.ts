// What reading the kernel costs: the basis for "read these chains, or the whole table?".
// Measured here (../shared/reference/iptables-costs.md, and again at 1,000 x 100 rules): on
// nf_tables `iptables -S <chain>` takes 4 to 15 ms whatever the table's size, and
// iptables-save about 8 µs per rule (0.8 s at 100,000); on legacy any read copies the whole
// table (about 2 µs per rule), one chain as much as all of them. A fixed model rather than
// timings taken at run time: the same state always gets the same decision.
import type { Backend } from '../iptables/backend.js';

interface CostModel {
  readonly chainMs: (tableRules: number) => number;
  readonly tableMs: (tableRules: number) => number;
}

const MODELS: Record<Backend, CostModel> = {
  nft: { chainMs: () => 8, tableMs: (rules) => 10 + rules * 0.008 },
  legacy: { chainMs: (rules) => 3 + rules * 0.002, tableMs: (rules) => 3 + rules * 0.002 },
};

/**
 * Whether reading `count` chains one by one (`parallel` at a time) is expected to take less
 * wall time than one read of the whole table of `tableRules` rules.
 */
export function chainsCheaper(backend: Backend, count: number, parallel: number, tableRules: number): boolean {
  const model = MODELS[backend];
  return Math.ceil(count / parallel) * model.chainMs(tableRules) < model.tableMs(tableRules);
}
