// GET /networking/v1/internal/security_groups responses: one page or an array of pages.
// `rules` is a JSON string as the policy server sends it, or an array.
import { createHash } from 'node:crypto';
import { groupShares, PROTOCOLS, type RawAsgRule, type SecurityGroup, validateAsgRule, type AsgRule } from '../model/asg.js';
import { ErrorSink, type InputError, pointer } from './input-error.js';
import { parseJson } from './json.js';
import { checkSchema, compileSchema } from './schema.js';
import type { GenerationalCache } from '../memo/generational.js';

const nullable = (type: string) => ({ type: [type, 'null'] });

const ruleSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['protocol', 'destination'],
  properties: {
    protocol: { enum: PROTOCOLS },
    destination: { type: 'string' },
    ports: nullable('string'),
    type: { ...nullable('integer'), minimum: -1, maximum: 255, description: 'must be an integer between -1 and 255 (inclusive)' },
    code: { ...nullable('integer'), minimum: -1, maximum: 255, description: 'must be an integer between -1 and 255 (inclusive)' },
    description: nullable('string'),
    log: nullable('boolean'),
  },
};

const guidList = { type: 'array', items: { type: 'string', minLength: 1 } };

const pageSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['security_groups'],
  properties: {
    next: { type: 'integer', minimum: 0 },
    security_groups: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['guid', 'name', 'rules'],
        properties: {
          guid: { type: 'string', minLength: 1 },
          name: { type: 'string' },
          rules: { type: ['string', 'array'] },
          staging_default: { type: 'boolean' },
          running_default: { type: 'boolean' },
          staging_space_guids: guidList,
          running_space_guids: guidList,
        },
      },
    },
  },
};

const validateRules = compileSchema({ type: 'array', items: ruleSchema });
const validatePage = compileSchema(pageSchema);

interface RawGroup {
  guid: string;
  name: string;
  rules: string | unknown[];
  staging_default?: boolean;
  running_default?: boolean;
  staging_space_guids?: string[];
  running_space_guids?: string[];
}

/** One group's rules, with errors whose pointers are relative to the group. */
export interface IngestedRules {
  readonly rules: readonly AsgRule[];
  readonly errors: readonly { readonly pointer: string; readonly message: string }[];
}

/** What the agent keeps of a group between cycles: a digest of its rules and what checking them found, not the rules. */
export interface CheckedGroup {
  /**
   * SHA-1 of the rules as JSON text (the string the policy server sends, or the array written
   * out); without a cache (one ingest), that text itself.
   */
  readonly digest: string;
  readonly errors: IngestedRules['errors'];
  readonly shares: SecurityGroup['shares'];
}

/** Checked groups by guid, checked again when the name or the rules changed: see GenerationalCache. */
export type GroupRulesCache = GenerationalCache<string, CheckedGroup>;

function ingestRules(guid: string, name: string, rulesValue: unknown, file: string): IngestedRules {
  const sink = new ErrorSink(file);
  let rules: unknown = rulesValue;
  if (typeof rules === 'string') {
    const parsed = parseJson(rules, file);
    if (!parsed.ok) {
      sink.add('/rules', `rules is a string that ${parsed.error.message}`);
      return { rules: [], errors: sink.errors };
    }
    rules = parsed.value;
  }
  if (!checkSchema(validateRules, rules, sink, '/rules')) return { rules: [], errors: sink.errors };
  const result: AsgRule[] = [];
  (rules as RawAsgRule[]).forEach((rawRule, ruleIndex) => {
    const { rule, errors } = validateAsgRule(rawRule, { groupGuid: guid, groupName: name, ruleIndex });
    for (const error of errors) {
      sink.add(`/rules/${ruleIndex}${error.field ? `/${error.field}` : ''}`, error.message);
    }
    if (rule) result.push(rule);
  });
  return { rules: result, errors: sink.errors };
}

/**
 * A group whose rules are read when first asked for: the agent compiles an unchanged group's
 * chains from its cache, and so never reads (nor keeps) its rules at all.
 */
class IngestedGroup implements SecurityGroup {
  readonly guid: string;
  readonly name: string;
  readonly stagingDefault: boolean;
  readonly runningDefault: boolean;
  readonly stagingSpaceGuids: readonly string[];
  readonly runningSpaceGuids: readonly string[];
  readonly broken: boolean;
  readonly shares: SecurityGroup['shares'];
  readonly revision: string;

  /** The rules as the document gave them, until they are read. */
  private unread: unknown;

  constructor(
    raw: RawGroup,
    checked: CheckedGroup,
    private readonly file: string,
    private loaded: readonly AsgRule[] | undefined,
  ) {
    if (loaded === undefined) this.unread = raw.rules;
    this.revision = checked.digest;
    this.guid = raw.guid;
    this.name = raw.name;
    this.stagingDefault = raw.staging_default ?? false;
    this.runningDefault = raw.running_default ?? false;
    this.stagingSpaceGuids = raw.staging_space_guids ?? [];
    this.runningSpaceGuids = raw.running_space_guids ?? [];
    this.broken = checked.errors.length > 0;
    this.shares = checked.shares;
  }

  get rules(): readonly AsgRule[] {
    if (this.loaded === undefined) {
      this.loaded = ingestRules(this.guid, this.name, this.unread, this.file).rules;
      this.unread = undefined;
    }
    return this.loaded;
  }
}

export interface IngestedSecurityGroups {
  readonly groups: SecurityGroup[];
  readonly errors: InputError[];
  /** Groups with an error in their rules (their other rules are in `groups`): the agent holds whoever needs them. */
  readonly broken: Set<string>;
  /** Errors outside any group's rules: the document as a whole cannot be trusted. */
  readonly documentErrors: number;
}

/**
 * With a cache, a group whose guid, name and rules text are unchanged since the last call is
 * not checked again, and its rules are not read until a compile asks for them.
 */
export function ingestSecurityGroups(document: unknown, file: string, cache?: GroupRulesCache): IngestedSecurityGroups {
  const sink = new ErrorSink(file);
  const broken = new Set<string>();
  const pages = Array.isArray(document) ? document : [document];
  const pagePointer = (index: number) => (Array.isArray(document) ? pointer(index) : '');
  const groups: SecurityGroup[] = [];
  const seen = new Map<string, string>();
  pages.forEach((page, pageIndex) => {
    const at = pagePointer(pageIndex);
    if (!checkSchema(validatePage, page, sink, at)) return;
    (page as { security_groups: RawGroup[] }).security_groups.forEach((raw, groupIndex) => {
      const groupAt = `${at}${pointer('security_groups', groupIndex)}`;
      const first = seen.get(raw.guid);
      if (first !== undefined) {
        sink.add(`${groupAt}/guid`, `security group ${raw.guid} is listed twice (first at ${first})`);
        return;
      }
      seen.set(raw.guid, groupAt);
      const text = typeof raw.rules === 'string' ? raw.rules : JSON.stringify(raw.rules);
      // With a cache the digest stands for the text between cycles; without, the text is at hand.
      const digest = cache ? createHash('sha1').update(text).digest('base64') : text;
      let loaded: readonly AsgRule[] | undefined;
      const check = (): CheckedGroup => {
        const ingested = ingestRules(raw.guid, raw.name, raw.rules, file);
        loaded = ingested.rules;
        return { digest, errors: ingested.errors, shares: groupShares(ingested.rules) };
      };
      const checked = cache ? cache.get(raw.guid, [raw.name, digest], check) : check();
      for (const error of checked.errors) sink.add(`${groupAt}${error.pointer}`, error.message);
      if (checked.errors.length > 0) broken.add(raw.guid);
      groups.push(new IngestedGroup(raw, checked, file, loaded));
    });
  });
  const inGroups = sink.errors.filter((error) => /^(\/\d+)?\/security_groups\/\d+\/rules(\/|$)/.test(error.pointer)).length;
  return { groups, errors: sink.errors, broken, documentErrors: sink.errors.length - inGroups };
}
