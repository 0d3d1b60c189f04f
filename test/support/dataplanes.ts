// Dataplanes that behave like another one except for how restore goes (for fault tests).
import type { Dataplane } from '../../src/iptables/dataplane.js';
import type { Family } from '../../src/model/address.js';

export function withRestore(
  base: Dataplane,
  restore: (family: Family, script: string, base: Dataplane) => Promise<void>,
): Dataplane {
  return {
    backend: base.backend,
    save: (family, table) => base.save(family, table),
    listChain: (family, table, chain) => base.listChain(family, table, chain),
    hasTable: (family, table) => base.hasTable(family, table),
    restore: (family, script) => restore(family, script, base),
  };
}
