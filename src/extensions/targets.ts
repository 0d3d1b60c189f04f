// Targets: verdicts, -j/-g to user chains, REJECT (always with --reject-with), LOG.
import type { Family } from '../model/address.js';
import type { Target } from '../ir/targets.js';
import { quoteArgument } from './quote.js';
import { safeText } from './comment.js';
import { optionsByName, type ParsedOption, parseInteger } from './extension.js';
import { hex, parseValueMask } from './mark.js';

export const LOG_PREFIX_MAX_BYTES = 29;
export const DEFAULT_LOG_LEVEL = 4;

export const DEFAULT_REJECT: Record<Family, string> = { 4: 'icmp-port-unreachable', 6: 'icmp6-port-unreachable' };

/** --reject-with values per family, aliases -> what iptables-save prints. */
const REJECT_TYPES: Record<Family, Readonly<Record<string, string>>> = {
  4: {
    'icmp-net-unreachable': 'icmp-net-unreachable',
    'net-unreach': 'icmp-net-unreachable',
    'icmp-host-unreachable': 'icmp-host-unreachable',
    'host-unreach': 'icmp-host-unreachable',
    'icmp-port-unreachable': 'icmp-port-unreachable',
    'port-unreach': 'icmp-port-unreachable',
    'icmp-proto-unreachable': 'icmp-proto-unreachable',
    'proto-unreach': 'icmp-proto-unreachable',
    'icmp-net-prohibited': 'icmp-net-prohibited',
    'net-prohib': 'icmp-net-prohibited',
    'icmp-host-prohibited': 'icmp-host-prohibited',
    'host-prohib': 'icmp-host-prohibited',
    'icmp-admin-prohibited': 'icmp-admin-prohibited',
    'admin-prohib': 'icmp-admin-prohibited',
    'tcp-reset': 'tcp-reset',
    'tcp-rst': 'tcp-reset',
  },
  6: {
    'icmp6-no-route': 'icmp6-no-route',
    'no-route': 'icmp6-no-route',
    'icmp6-adm-prohibited': 'icmp6-adm-prohibited',
    'adm-prohibited': 'icmp6-adm-prohibited',
    'icmp6-addr-unreachable': 'icmp6-addr-unreachable',
    'addr-unreach': 'icmp6-addr-unreachable',
    'icmp6-port-unreachable': 'icmp6-port-unreachable',
    'port-unreach': 'icmp6-port-unreachable',
    'icmp6-policy-fail': 'icmp6-policy-fail',
    'policy-fail': 'icmp6-policy-fail',
    'icmp6-reject-route': 'icmp6-reject-route',
    'reject-route': 'icmp6-reject-route',
    'tcp-reset': 'tcp-reset',
  },
};

const LOG_LEVELS: Readonly<Record<string, number>> = {
  emerg: 0,
  alert: 1,
  crit: 2,
  error: 3,
  err: 3,
  warning: 4,
  warn: 4,
  notice: 5,
  info: 6,
  debug: 7,
};

export function reject(family: Family, withType: string = DEFAULT_REJECT[family]): Target {
  return { kind: 'REJECT', with: withType };
}

/** LOG with a prefix made safe and cut to the 29 bytes the kernel keeps. */
export function log(prefix: string): Target {
  return { kind: 'LOG', prefix: safeText(prefix, LOG_PREFIX_MAX_BYTES) };
}

// Targets are never changed once built and shared among many rules that follow each other:
// the last one printed is remembered.
let lastPrinted: { readonly target: Target; readonly text: string } | undefined;

/** The target as iptables-save prints it. */
export function renderTarget(target: Target): string {
  if (lastPrinted?.target === target) return lastPrinted.text;
  const text = printTarget(target);
  lastPrinted = { target, text };
  return text;
}

function printTarget(target: Target): string {
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
    case 'MARK':
      return `-j MARK --set-xmark ${hex(target.value)}/${hex(target.mask)}`;
  }
}

/** MARK's forms as iptables-save restates them (all become --set-xmark value/mask). */
function parseMarkTarget(byName: Map<string, ParsedOption>): Target | undefined {
  if (byName.size !== 1) return undefined;
  const [[name, option]] = [...byName] as [[string, ParsedOption]];
  const parsed = parseValueMask(option.values[0] ?? '');
  if (parsed === undefined) return undefined;
  const { value, mask } = parsed;
  switch (name) {
    case 'set-xmark':
    case 'set-mark':
      return { kind: 'MARK', value, mask };
    case 'or-mark':
      return option.values[0]?.includes('/') ? undefined : { kind: 'MARK', value, mask: value };
    case 'and-mark':
      return option.values[0]?.includes('/') ? undefined : { kind: 'MARK', value: 0, mask: ~value >>> 0 };
    case 'xor-mark':
      return option.values[0]?.includes('/') ? undefined : { kind: 'MARK', value, mask: 0 };
    default:
      return undefined;
  }
}

/** The options each target asgc models takes, and how many values each. */
export const TARGET_OPTIONS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  REJECT: { 'reject-with': 1 },
  LOG: {
    'log-prefix': 1,
    'log-level': 1,
    'log-tcp-sequence': 0,
    'log-tcp-options': 0,
    'log-ip-options': 0,
    'log-uid': 0,
    'log-macdecode': 0,
  },
  MARK: { 'set-xmark': 1, 'set-mark': 1, 'or-mark': 1, 'and-mark': 1, 'xor-mark': 1 },
};

/**
 * `-j NAME --option value...` (or `-g NAME` when `goto`) read back and normalised; undefined
 * when asgc does not model it (an unknown target, an option it does not speak): the rule
 * then stays opaque.
 */
export function parseTarget(
  name: string,
  options: readonly ParsedOption[],
  goto: boolean,
  family: Family,
  isUserChain: (name: string) => boolean,
): Target | undefined {
  const byName = optionsByName(options, {});
  if (byName === undefined) return undefined;
  if (goto) return byName.size === 0 && isUserChain(name) ? { kind: 'goto', chain: name } : undefined;
  if (name === 'ACCEPT' || name === 'DROP' || name === 'RETURN')
    return byName.size === 0 ? { kind: 'verdict', verdict: name } : undefined;
  if (isUserChain(name)) return byName.size === 0 ? { kind: 'jump', chain: name } : undefined;
  if (name === 'REJECT') {
    const given = byName.get('reject-with')?.values[0];
    const withType = given === undefined ? DEFAULT_REJECT[family] : REJECT_TYPES[family][given];
    return withType !== undefined && byName.size <= 1 ? { kind: 'REJECT', with: withType } : undefined;
  }
  if (name === 'LOG') {
    const prefix = byName.get('log-prefix')?.values[0];
    const levelText = byName.get('log-level')?.values[0];
    const level = levelText === undefined ? undefined : (LOG_LEVELS[levelText] ?? parseInteger(levelText, 0, 7));
    if ([...byName.keys()].some((option) => option !== 'log-prefix' && option !== 'log-level')) return undefined;
    if (levelText !== undefined && level === undefined) return undefined;
    return {
      kind: 'LOG',
      ...(prefix !== undefined && { prefix }),
      ...(level !== undefined && level !== DEFAULT_LOG_LEVEL && { level }),
    };
  }
  if (name === 'MARK') return parseMarkTarget(byName);
  return undefined;
}
