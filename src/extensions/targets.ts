// Targets: verdicts, -j/-g to user chains, REJECT (always with --reject-with), LOG.
import type { Family } from '../model/address.js';
import type { Target } from '../ir/targets.js';
import { quoteArgument } from '../render/quote.js';
import { safeText } from './comment.js';

export const LOG_PREFIX_MAX_BYTES = 29;
export const DEFAULT_LOG_LEVEL = 4;

export const DEFAULT_REJECT: Record<Family, string> = { 4: 'icmp-port-unreachable', 6: 'icmp6-port-unreachable' };

export function reject(family: Family, withType: string = DEFAULT_REJECT[family]): Target {
  return { kind: 'REJECT', with: withType };
}

/** LOG with a prefix made safe and cut to the 29 bytes the kernel keeps. */
export function log(prefix: string): Target {
  return { kind: 'LOG', prefix: safeText(prefix, LOG_PREFIX_MAX_BYTES) };
}

export function renderTarget(target: Target): string {
  switch (target.kind) {
    case 'verdict':
      return `-j ${target.verdict}`;
    case 'jump':
      return `-j ${target.chain}`;
    case 'goto':
      return `-g ${target.chain}`;
    case 'REJECT':
      return `-j REJECT --reject-with ${target.with}`;
    case 'LOG': {
      const prefix = target.prefix === undefined ? '' : ` --log-prefix ${quoteArgument(target.prefix)}`;
      const level = target.level === undefined || target.level === DEFAULT_LOG_LEVEL ? '' : ` --log-level ${target.level}`;
      return `-j LOG${prefix}${level}`;
    }
  }
}
