// One rule's text (after `-A <chain>`) -> the normalised IR the compiler produces, so that
// cosmetic differences (option order, long options, `80:80`, ICMP names, an implicit
// `-m tcp`, IPv6 spelling) never count as a change. What asgc does not model stays opaque:
// kept verbatim and compared as text.
import { type Family, parseCidr } from '../model/address.js';
import type { Match } from '../ir/matches.js';
import type { AddressMatch, ChainRule, InterfaceMatch, ProtocolMatch, Rule } from '../ir/ruleset.js';
import type { MatchExtension, ParsedOption } from '../extensions/extension.js';
import { IMPLICIT_MODULE, matchExtension } from '../extensions/registry.js';
import { parseTarget, TARGET_OPTIONS } from '../extensions/targets.js';
import { renderRuleSpec } from '../render/save-text.js';
import { tokenizeRestoreLine } from './tokenize.js';

/** Protocol names and numbers -> what iptables-save prints; null for "any protocol". */
const PROTOCOLS: Readonly<Record<string, string | null>> = {
  all: null,
  '0': null,
  tcp: 'tcp',
  '6': 'tcp',
  udp: 'udp',
  '17': 'udp',
  icmp: 'icmp',
  '1': 'icmp',
  icmpv6: 'ipv6-icmp',
  'ipv6-icmp': 'ipv6-icmp',
  '58': 'ipv6-icmp',
  sctp: 'sctp',
  '132': 'sctp',
  udplite: 'udplite',
  '136': 'udplite',
  gre: 'gre',
  '47': 'gre',
  esp: 'esp',
  '50': 'esp',
  ah: 'ah',
  '51': 'ah',
};

const HEADER_OPTIONS: Readonly<Record<string, 'source' | 'destination' | 'inInterface' | 'outInterface' | 'protocol'>> = {
  '-s': 'source',
  '--source': 'source',
  '--src': 'source',
  '-d': 'destination',
  '--destination': 'destination',
  '--dst': 'destination',
  '-i': 'inInterface',
  '--in-interface': 'inInterface',
  '-o': 'outInterface',
  '--out-interface': 'outInterface',
  '-p': 'protocol',
  '--protocol': 'protocol',
};

class Opaque extends Error {}

function parseAddressOption(text: string, family: Family, negated: boolean): AddressMatch | undefined {
  const parsed = parseCidr(text);
  if (!parsed.ok || parsed.value.family !== family) throw new Opaque();
  // iptables drops any /0, but keeps a negated one (legacy prints `! -d 0.0.0.0/0`).
  return parsed.value.prefixLength === 0 && !negated ? undefined : { block: parsed.value, negated };
}

function parseInterface(name: string, negated: boolean): InterfaceMatch | undefined {
  if (name === '' || name.length > 15) throw new Opaque();
  return name === '+' && !negated ? undefined : { name, negated };
}

function parseProtocol(name: string, negated: boolean): ProtocolMatch | undefined {
  const normalised = PROTOCOLS[name.toLowerCase()];
  if (normalised === undefined) {
    if (!/^[1-9][0-9]{0,2}$/.test(name) || Number(name) > 255) throw new Opaque();
    return { name, negated };
  }
  if (normalised === null) {
    if (negated) throw new Opaque();
    return undefined;
  }
  return { name: normalised, negated };
}

/** Reads the words of one rule, left to right. */
class RuleReader {
  private index = 0;

  constructor(private readonly words: readonly string[]) {}

  get done(): boolean {
    return this.index >= this.words.length;
  }

  peek(offset = 0): string | undefined {
    return this.words[this.index + offset];
  }

  next(): string {
    const word = this.words[this.index++];
    if (word === undefined) throw new Opaque();
    return word;
  }

  /** Step back over words already read. */
  back(count: number): void {
    this.index -= count;
  }

  /** `[!] --option value...` options for as long as `known` names them (arity per option). */
  options(known: Readonly<Record<string, number>>): ParsedOption[] {
    const options: ParsedOption[] = [];
    while (!this.done) {
      const negated = this.peek() === '!';
      const word = this.peek(negated ? 1 : 0);
      const name = word?.startsWith('--') ? word.slice(2) : undefined;
      const arity = name === undefined ? undefined : known[name];
      if (name === undefined || arity === undefined) break;
      this.index += negated ? 2 : 1;
      const values: string[] = [];
      for (let i = 0; i < arity; i++) values.push(this.next());
      options.push({ name, negated, values });
    }
    return options;
  }
}

/** A match module as written: its options are collected first, read into the IR at the end. */
interface LoadedMatch {
  readonly extension: MatchExtension<Match>;
  readonly options: ParsedOption[];
}

type HeaderFields = { -readonly [K in 'source' | 'destination' | 'inInterface' | 'outInterface' | 'protocol']?: Rule[K] };

export function parseRuleSpec(spec: string, family: Family, isUserChain: (name: string) => boolean): ChainRule {
  try {
    const reader = new RuleReader(tokenizeRestoreLine(spec));
    const header: HeaderFields = {};
    const seen = new Set<string>();
    const loaded: LoadedMatch[] = [];
    let target: { name: string; goto: boolean; known: Readonly<Record<string, number>>; options: ParsedOption[] } | undefined;
    while (!reader.done) {
      const negated = reader.peek() === '!';
      if (negated) reader.next();
      const word = reader.next();
      const field = HEADER_OPTIONS[word];
      if (field !== undefined) {
        if (seen.has(field)) throw new Opaque();
        seen.add(field);
        const value = reader.next();
        if (field === 'source' || field === 'destination') header[field] = parseAddressOption(value, family, negated);
        else if (field === 'protocol') header.protocol = parseProtocol(value, negated);
        else header[field] = parseInterface(value, negated);
      } else if (word === '-m' || word === '--match') {
        const extension = negated ? undefined : matchExtension(reader.next());
        if (extension === undefined) throw new Opaque();
        loaded.push({ extension, options: reader.options(extension.options) });
      } else if (word === '-j' || word === '--jump' || word === '-g' || word === '--goto') {
        if (negated || target !== undefined) throw new Opaque();
        const name = reader.next();
        const known = TARGET_OPTIONS[name] ?? {};
        target = { name, goto: word === '-g' || word === '--goto', known, options: reader.options(known) };
      } else if (word.startsWith('--')) {
        // An option of the target or of a module loaded earlier, or of the protocol's own
        // implicit module (`-p tcp --dport 80` loads `-m tcp` where its first option is),
        // as iptables reads them.
        const option = word.slice(2);
        if (target?.known[option] !== undefined) {
          reader.back(negated ? 2 : 1);
          target.options.push(...reader.options(target.known));
          continue;
        }
        let owner = loaded.findLast((entry) => entry.extension.options[option] !== undefined);
        if (owner === undefined) {
          const module = header.protocol && !header.protocol.negated ? IMPLICIT_MODULE[header.protocol.name] : undefined;
          const extension = module === undefined ? undefined : matchExtension(module);
          if (extension?.options[option] === undefined) throw new Opaque();
          owner = { extension, options: [] };
          loaded.push(owner);
        }
        reader.back(negated ? 2 : 1);
        owner.options.push(...reader.options(owner.extension.options));
      } else {
        throw new Opaque();
      }
    }
    const matches = loaded.map(({ extension, options }) => {
      const match = extension.parse(options, family);
      if (match === undefined) throw new Opaque();
      return match;
    });
    const parsedTarget = target && parseTarget(target.name, target.options, target.goto, family, isUserChain);
    if (target && parsedTarget === undefined) throw new Opaque();
    return { kind: 'rule', ...header, matches, ...(parsedTarget && { target: parsedTarget }) };
  } catch (error) {
    if (error instanceof Opaque) return { kind: 'opaque', text: spec };
    throw error;
  }
}

/** The text of a rule as asgc would print it: canonical when modelled, verbatim when opaque. */
export function canonicalSpec(spec: string, family: Family, isUserChain: (name: string) => boolean): string {
  const rule = parseRuleSpec(spec, family, isUserChain);
  return rule.kind === 'opaque' ? spec : renderRuleSpec(rule, family);
}
