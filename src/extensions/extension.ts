// The contract every iptables extension module implements for the match kind it owns: how to
// print it canonically and how to read back what iptables-save printed, normalised, so that
// render and parse stay mirror images.
import type { Family } from '../model/address.js';
import type { Match } from '../ir/matches.js';
import type { Packet } from '../ir/packet.js';
import type { IpSet } from '../ir/ipset.js';

/** One option of a match as written: `[!] --name value...`. */
export interface ParsedOption {
  readonly name: string;
  readonly negated: boolean;
  readonly values: readonly string[];
}

export interface MatchExtension<M extends Match> {
  /** The module name after -m. */
  readonly module: string;
  /** Every long option the module takes (aliases included) and how many values each takes. */
  readonly options: Readonly<Record<string, number>>;
  /** Render canonically, as iptables-save prints it, starting with `-m <module>`. */
  render(match: M, family: Family): string;
  /** The normalised match, or undefined when asgc does not model this use of the module. */
  parse(options: readonly ParsedOption[], family: Family): M | undefined;
  /** Whether the kernel's match would match the packet; undefined when that cannot be known. */
  test(match: M, packet: Packet, context: MatchContext): boolean | undefined;
}

/** What a match may need besides the packet. */
export interface MatchContext {
  /** The contents of the ipsets rules name. */
  readonly sets: ReadonlyMap<string, IpSet>;
  /**
   * Whether the packet's source is routed back out of the interface it came in on (the host's
   * routes); undefined when that cannot be known.
   */
  readonly reversePath?: (packet: Packet) => boolean | undefined;
}

/** `value` in [start, end], negated when the option was. */
export function inSpan(value: number | bigint, start: number | bigint, end: number | bigint, negated: boolean): boolean {
  return (value >= start && value <= end) !== negated;
}

export function negation(negated: boolean): string {
  return negated ? '! ' : '';
}

/** Options by canonical name; undefined if any option is unknown, repeated or wrongly negated. */
export function optionsByName(
  options: readonly ParsedOption[],
  aliases: Readonly<Record<string, string>>,
  negatable: readonly string[] = [],
): Map<string, ParsedOption> | undefined {
  const byName = new Map<string, ParsedOption>();
  for (const option of options) {
    const name = aliases[option.name] ?? option.name;
    if (byName.has(name) || (option.negated && !negatable.includes(name))) return undefined;
    byName.set(name, { ...option, name });
  }
  return byName;
}

/** A decimal integer in [min, max], written without sign or leading zeros, as iptables prints. */
export function parseInteger(text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined || !/^(0|[1-9][0-9]*)$/.test(text)) return undefined;
  const value = Number(text);
  return value >= min && value <= max ? value : undefined;
}
