// asgc check: "can this container reach X?" answered from the rules themselves: compiled from a
// scenario, or read from a live iptables-save dump.
import { type Command, InvalidArgumentError, Option } from 'commander';
import { readTextFile } from '../exec/text-file.js';
import { oneLine } from '../ingest/input-error.js';
import { type Decision, Evaluator, type RulePlace } from '../check/evaluate.js';
import { describePolicy, policyOf } from '../check/explain.js';
import { type CheckPacket, type CheckProtocol, type CheckQuestion, packetFor } from '../check/query.js';
import { CellLinks } from '../check/cell-links.js';
import { rulesetFromSaveText } from '../iptables/saved-ruleset.js';
import { modelledSets } from '../ipset/script.js';
import type { IpSet } from '../ir/ipset.js';
import { fail, type Result } from '../model/result.js';
import type { Ruleset } from '../ir/ruleset.js';
import type { Family } from '../model/address.js';
import { DEFAULT_CONFIG } from '../model/cell.js';
import { renderRuleSpec } from '../render/save-text.js';
import {
  type CommandContext,
  type DocumentOptions,
  EXIT,
  loadScenario,
  withDocumentOptions,
  withOptimizeOption,
} from './common.js';

interface CheckOptions extends DocumentOptions {
  container: string;
  to?: string;
  from?: string;
  toHost?: boolean;
  source?: string;
  proto: CheckProtocol;
  port?: number;
  sourcePort?: number;
  icmpType?: { type: number; code: number };
  mark?: number;
  inInterface?: string;
  outInterface?: string;
  saved?: string;
  savedSets?: string;
  trace?: boolean;
}

/** `ipset save` output as the evaluator's sets; sets it cannot model are left out, with a note. */
async function readSavedSets(file: string): Promise<Result<{ sets: IpSet[]; notes: string[] }, string>> {
  const text = await readTextFile(file);
  return text.ok ? modelledSets(text.value) : fail(text.error.message);
}

/** A mark as policies.json writes a tag and iptables prints a mark: 1 to 8 hex digits, 0x optional. */
function hexMark(text: string): number {
  const digits = /^(?:0[xX])?([0-9a-fA-F]{1,8})$/.exec(text)?.[1];
  if (digits === undefined) throw new InvalidArgumentError('must be 1 to 8 hex digits, 0x optional (e.g. 0x5e or 5e)');
  return parseInt(digits, 16);
}

function integer(min: number, max: number) {
  return (text: string) => {
    const value = /^(0|[1-9][0-9]*)$/.test(text) ? Number(text) : NaN;
    if (!(value >= min && value <= max)) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    return value;
  };
}

function icmpType(text: string): { type: number; code: number } {
  const [type, code = '0', extra] = text.split('/');
  const [t, c] = [integer(0, 255)(type ?? ''), integer(0, 255)(code)];
  if (extra !== undefined) throw new InvalidArgumentError('must be TYPE or TYPE/CODE');
  return { type: t, code: c };
}

const VERDICT_WORD = { ACCEPT: 'ALLOWED', DROP: 'DENIED (dropped)', REJECT: 'DENIED', unknown: 'UNKNOWN' } as const;

function place(where: RulePlace, family: Family): string {
  const spec = where.rule.kind === 'opaque' ? where.rule.text : renderRuleSpec(where.rule, family);
  return `${chainOf(where)} rule ${where.index}: ${spec}`;
}

/** A chain as `iptables -t` would name it: the table only when it is not filter. */
function chainOf(where: RulePlace): string {
  return where.table === 'filter' ? where.chain : `${where.table} ${where.chain}`;
}

function report(decision: Decision, { summary, packet, container }: CheckPacket, trace: boolean): string {
  const { family, inInterface } = packet;
  const about = [
    `IPv${family}`,
    ...(container ? [`container ${container.handle}`] : []),
    ...(inInterface !== undefined ? [`in by ${inInterface}`] : []),
    'a new connection',
  ];
  const lines = [`${VERDICT_WORD[decision.verdict]}  ${summary} (${about.join(', ')})`];
  if (decision.decidedBy) lines.push(`  decided by ${place(decision.decidedBy, family)}`);
  else lines.push(`  decided by ${decision.reason}`);
  const policy = policyOf(decision);
  if (policy) lines.push(`  policy: ${describePolicy(policy)}`);
  if (decision.verdict === 'unknown') lines.push(`  why unknown: ${decision.reason}`);
  const path = [...decision.via, ...(decision.decidedBy ? [decision.decidedBy] : [])].map(
    (step) => `${chainOf(step)} ${step.index}`,
  );
  if (path.length > 0) lines.push(`  path: ${path.join(' -> ')}`);
  if (trace) {
    lines.push('  every rule visited:');
    for (const step of decision.trace) lines.push(`    ${step.result.padEnd(8)} ${place(step, family)}`);
  }
  return `${lines.join('\n')}\n`;
}

function json(decision: Decision, { summary, packet, container }: CheckPacket, trace: boolean): string {
  const { family, inInterface } = packet;
  const where = (step: RulePlace) => ({
    table: step.table,
    chain: step.chain,
    index: step.index,
    rule: step.rule.kind === 'opaque' ? step.rule.text : renderRuleSpec(step.rule, family),
  });
  return `${JSON.stringify(
    {
      verdict: decision.verdict,
      allowed: decision.verdict === 'ACCEPT',
      packet: summary,
      family,
      ...(container && { container: container.handle }),
      ...(inInterface !== undefined && { inInterface }),
      ...(decision.rejectWith && { rejectWith: decision.rejectWith }),
      decidedBy: decision.decidedBy ? where(decision.decidedBy) : null,
      policy: policyOf(decision) ?? null,
      via: decision.via.map(where),
      reason: decision.reason,
      ...(trace && { trace: decision.trace.map((step) => ({ ...where(step), result: step.result })) }),
    },
    null,
    2,
  )}\n`;
}

export function addCheckCommand(program: Command, context: CommandContext): void {
  const { io, setExit } = context;
  withOptimizeOption(
    withDocumentOptions(
      program
        .command('check')
        .description('say whether a packet is allowed, which rule decides and which policy that rule comes from')
        .argument('[scenario-dir]', 'the scenario to compile (optional with --saved when --container is an address)'),
    ),
  )
    .requiredOption('--container <handle|ip>', 'the container the question is about')
    .option('--to <ip>', 'traffic from the container to this address')
    .option('--from <ip>', 'traffic from this address to the container (c2c, ingress)')
    .option('--to-host', 'the --to address is the cell itself (host access, the INPUT chain)')
    .option('--source <ip>', 'with --to: the container sends from this address, not its own (link-local, forged)')
    .addOption(
      new Option('--proto <protocol>', 'tcp, udp, icmp or icmpv6').choices(['tcp', 'udp', 'icmp', 'icmpv6']).default('tcp'),
    )
    .addOption(new Option('--port <n>', 'destination port (tcp, udp)').argParser(integer(1, 65535)))
    .addOption(new Option('--source-port <n>', 'source port (default 40000)').argParser(integer(1, 65535)))
    .addOption(new Option('--icmp-type <T[/C]>', 'ICMP type and code (default echo request)').argParser(icmpType))
    .addOption(
      new Option(
        '--mark <tag>',
        'the mark the packet arrives with, in hex as policies.json and iptables write it (0x5e or 5e; c2c from other cells: the source tag)',
      ).argParser(hexMark),
    )
    .option(
      '--in-interface <name>',
      "the interface the packet comes in by (default: the sending container's own, or the first host interface)",
    )
    .option(
      '--out-interface <name>',
      'the interface it leaves by (default: the first host interface for traffic out of the cell)',
    )
    .option('--saved <file>', 'check this iptables-save (or ip6tables-save) dump instead of compiling')
    .option('--saved-sets <file>', 'with --saved: the `ipset save` output holding the sets its rules name')
    .option('--trace', 'list every rule the packet meets')
    .action(async (directory: string | undefined, options: CheckOptions) => {
      if (directory === undefined && options.saved === undefined) {
        io.stderr('asgc check: give a scenario directory, or --saved FILE\n');
        return setExit(EXIT.usage);
      }
      const scenario = directory === undefined ? undefined : await loadScenario(context, directory, options, { printed: false });
      if (directory !== undefined && scenario === undefined) return;
      const question: CheckQuestion = {
        container: options.container,
        protocol: options.proto,
        ...(options.to !== undefined && { to: options.to }),
        ...(options.from !== undefined && { from: options.from }),
        ...(options.toHost && { toHost: true }),
        ...(options.source !== undefined && { source: options.source }),
        ...(options.port !== undefined && { port: options.port }),
        ...(options.sourcePort !== undefined && { sourcePort: options.sourcePort }),
        ...(options.icmpType !== undefined && { icmp: options.icmpType }),
        ...(options.mark !== undefined && { mark: options.mark }),
        ...(options.inInterface !== undefined && { inInterface: options.inInterface }),
        ...(options.outInterface !== undefined && { outInterface: options.outInterface }),
      };
      const containers = scenario?.policy.containers ?? [];
      const links = new CellLinks(containers, scenario?.config ?? DEFAULT_CONFIG);
      const asked = packetFor(question, containers, links);
      if (!asked.ok) {
        io.stderr(`asgc check: ${asked.error}\n`);
        return setExit(EXIT.usage);
      }
      const { packet, hook, container } = asked.value;
      if (scenario !== undefined && container === undefined)
        io.stderr(`asgc check: note: ${options.container} is not a container of this cell; checking the packet as given\n`);
      let ruleset: Ruleset;
      let sets: IpSet[] | undefined;
      if (options.saved !== undefined) {
        const text = await readTextFile(options.saved);
        if (!text.ok) {
          io.stderr(`${oneLine(options.saved)}: ${text.error.message}\n`);
          return setExit(EXIT.invalid);
        }
        const read = rulesetFromSaveText(text.value, packet.family, options.saved);
        if (!read.ok) {
          io.stderr(read.error.map((line) => `${line}\n`).join(''));
          return setExit(EXIT.invalid);
        }
        ruleset = read.value;
        sets = [];
        if (options.savedSets !== undefined) {
          const loaded = await readSavedSets(options.savedSets);
          if (!loaded.ok) {
            io.stderr(`${oneLine(options.savedSets)}: ${oneLine(loaded.error)}\n`);
            return setExit(EXIT.invalid);
          }
          for (const note of loaded.value.notes) io.stderr(`asgc check: note: ${note}\n`);
          sets = loaded.value.sets;
        }
      } else {
        ruleset = (scenario as NonNullable<typeof scenario>).cell[packet.family];
      }
      const decision = new Evaluator(ruleset, { ...(sets && { sets }), reversePath: links.reversePath }).evaluate(packet, {
        hook,
        trace: options.trace === true || options.json === true,
      });
      io.stdout(
        options.json
          ? json(decision, asked.value, options.trace === true)
          : report(decision, asked.value, options.trace === true),
      );
      setExit(decision.verdict === 'ACCEPT' ? EXIT.ok : decision.verdict === 'unknown' ? EXIT.unknown : EXIT.denied);
    });
}
