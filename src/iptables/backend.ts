// Which binaries speak to which backend and family.
import type { Family } from '../model/address.js';

export type Backend = 'nft' | 'legacy';
export const BACKENDS: readonly Backend[] = ['nft', 'legacy'];

export interface Tools {
  readonly save: string;
  readonly restore: string;
  /** The command-line tool, for small reads such as "does this chain exist". */
  readonly command: string;
}

export function tools(backend: Backend, family: Family): Tools {
  const base = family === 4 ? 'iptables' : 'ip6tables';
  const suffix = backend === 'nft' ? '-nft' : '-legacy';
  return { save: `${base}${suffix}-save`, restore: `${base}${suffix}-restore`, command: `${base}${suffix}` };
}
