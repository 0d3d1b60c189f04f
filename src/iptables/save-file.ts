// iptables-save / ip6tables-save text <-> lines, losslessly: every line is kept as written
// (comments, counters, rule text), so rendering a parsed file gives back the same bytes.
// Rules are read into the IR separately and only where needed (see rule-parse.ts).
import { oneLine } from '../ingest/input-error.js';
import { type Result, fail, ok } from '../model/result.js';
import { BUILTIN_CHAINS } from '../ir/ruleset.js';
import type { TextTable } from '../ir/text-table.js';

export type SaveLine =
  /** `#...` comment lines and blank lines, verbatim. */
  | { readonly kind: 'comment'; readonly text: string }
  | { readonly kind: 'table'; readonly name: string }
  /** `:NAME POLICY [p:b]`; `counters` is the `[p:b]` part as written, or '' when absent. */
  | { readonly kind: 'chain'; readonly name: string; readonly policy: string; readonly counters: string }
  /** `[p:b] -A CHAIN spec`; `counters` is the `[p:b] ` prefix as written, or ''. */
  | { readonly kind: 'rule'; readonly chain: string; readonly spec: string; readonly counters: string }
  | { readonly kind: 'commit' };

export interface SaveFile {
  readonly lines: readonly SaveLine[];
}

export interface SaveParseError {
  /** 1-based line number. */
  readonly line: number;
  readonly message: string;
}

const CHAIN_LINE = /^:(\S+) (\S+)(?: (\[\d+:\d+\]))?$/;
const RULE_LINE = /^(\[\d+:\d+\] )?-A (\S+)(?: (.*))?$/s;
const INCOMPATIBLE = /^# Table `(\S+)' is incompatible/;

function excerpt(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}

/** One line per error, the file and line first; what the line quotes is escaped onto that one line. */
export function formatSaveErrors(file: string, errors: readonly SaveParseError[]): string[] {
  return errors.map((error) => `${oneLine(file)}:${error.line}: ${oneLine(error.message)}`);
}

export function parseSaveText(text: string): Result<SaveFile, SaveParseError[]> {
  const lines: SaveLine[] = [];
  const errors: SaveParseError[] = [];
  let table: { name: string; line: number; chains: Set<string> } | undefined;
  const raw = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text === '' ? [] : text.split('\n');
  raw.forEach((line, index) => {
    const number = index + 1;
    const error = (message: string) => errors.push({ line: number, message });
    if (line.endsWith('\r')) return error('carriage return at end of line (CRLF line endings are not iptables-save output)');
    if (line.startsWith('#') || line.trim() === '') {
      const incompatible = INCOMPATIBLE.exec(line);
      if (incompatible) error(`iptables-nft cannot show table ${incompatible[1]}: it holds rules made with nft itself`);
      return lines.push({ kind: 'comment', text: line });
    }
    if (line.startsWith('*')) {
      if (table) error(`${line} opens a table before COMMIT of *${table.name} (line ${table.line})`);
      const name = line.slice(1);
      table = { name, line: number, chains: new Set(BUILTIN_CHAINS[name] ?? []) };
      return lines.push({ kind: 'table', name });
    }
    if (line === 'COMMIT') {
      if (!table) error('COMMIT outside a table');
      table = undefined;
      return lines.push({ kind: 'commit' });
    }
    if (!table) return error(`outside a table (no *table line before it): ${excerpt(line)}`);
    const chain = CHAIN_LINE.exec(line);
    if (chain) {
      table.chains.add(chain[1] as string);
      return lines.push({ kind: 'chain', name: chain[1] as string, policy: chain[2] as string, counters: chain[3] ?? '' });
    }
    const rule = RULE_LINE.exec(line);
    if (rule) {
      const name = rule[2] as string;
      if (!table.chains.has(name)) error(`rule for chain ${name}, which is not declared in *${table.name}`);
      return lines.push({ kind: 'rule', chain: name, spec: rule[3] ?? '', counters: rule[1] ?? '' });
    }
    return error(`not an iptables-save line: ${excerpt(line)}`);
  });
  if (table)
    errors.push({ line: raw.length, message: `input ends inside *${table.name} (line ${table.line}): COMMIT is missing` });
  return errors.length > 0 ? fail(errors) : ok({ lines });
}

export function renderSaveLine(line: SaveLine): string {
  switch (line.kind) {
    case 'comment':
      return line.text;
    case 'table':
      return `*${line.name}`;
    case 'chain':
      return line.counters === '' ? `:${line.name} ${line.policy}` : `:${line.name} ${line.policy} ${line.counters}`;
    case 'rule':
      return line.spec === '' ? `${line.counters}-A ${line.chain}` : `${line.counters}-A ${line.chain} ${line.spec}`;
    case 'commit':
      return 'COMMIT';
  }
}

export function renderSaveFile(file: SaveFile): string {
  return file.lines.length === 0 ? '' : `${file.lines.map(renderSaveLine).join('\n')}\n`;
}

/** The tables of a parsed save file (a table appearing twice is merged, as restore would). */
export function savedTables(file: SaveFile): Map<string, TextTable> {
  const tables = new Map<string, Map<string, { name: string; policy: string; specs: string[] }>>();
  let current: Map<string, { name: string; policy: string; specs: string[] }> | undefined;
  for (const line of file.lines) {
    if (line.kind === 'table') {
      current = tables.get(line.name) ?? new Map();
      tables.set(line.name, current);
      for (const name of BUILTIN_CHAINS[line.name] ?? [])
        if (!current.has(name)) current.set(name, { name, policy: 'ACCEPT', specs: [] });
    } else if (line.kind === 'chain' && current) {
      const existing = current.get(line.name);
      if (existing) existing.policy = line.policy;
      else current.set(line.name, { name: line.name, policy: line.policy, specs: [] });
    } else if (line.kind === 'rule' && current) {
      current.get(line.chain)?.specs.push(line.spec);
    }
  }
  return new Map([...tables].map(([name, chains]) => [name, { name, chains }]));
}
