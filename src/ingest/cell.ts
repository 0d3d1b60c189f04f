// The documents of one scenario (already read) -> a cell's policy, or every error found.
import { type CellPolicy, DEFAULT_CONFIG } from '../model/cell.js';
import { type Result, fail, ok } from '../model/result.js';
import { ingestConfig } from './config.js';
import { ingestContainers } from './containers.js';
import { ingestEndpoints } from './endpoints.js';
import type { InputError } from './input-error.js';
import { parseJson } from './json.js';
import { ingestPolicies } from './policies.js';
import { ingestSecurityGroups } from './security-groups.js';

export interface SourceText {
  /** How errors name the document (its path as the user gave it). */
  readonly file: string;
  readonly text: string;
}

export interface ScenarioTexts {
  readonly securityGroups?: SourceText;
  readonly policies?: SourceText;
  readonly containers?: SourceText;
  readonly endpoints?: SourceText;
  readonly config?: SourceText;
}

/** Every document given is checked; absent ones take their empty defaults. */
export function ingestScenario(
  texts: ScenarioTexts,
): Result<{ readonly cell: CellPolicy; readonly warnings: InputError[] }, InputError[]> {
  const errors: InputError[] = [];
  const ingest = <T extends { errors: InputError[] }>(
    source: SourceText | undefined,
    fallback: NoInfer<Omit<T, 'errors'>>,
    read: (document: unknown, file: string) => T,
  ): Omit<T, 'errors'> => {
    if (source === undefined) return fallback;
    const parsed = parseJson(source.text, source.file);
    if (!parsed.ok) {
      errors.push(parsed.error);
      return fallback;
    }
    const result = read(parsed.value, source.file);
    errors.push(...result.errors);
    return result;
  };
  const { groups } = ingest(
    texts.securityGroups,
    { groups: [], broken: new Set<string>(), documentErrors: 0 },
    ingestSecurityGroups,
  );
  const { policies } = ingest(texts.policies, { policies: [] }, ingestPolicies);
  const { containers, warnings } = ingest(texts.containers, { containers: [], warnings: [] }, ingestContainers);
  const { endpoints } = ingest(texts.endpoints, { endpoints: new Map<string, bigint[]>() }, ingestEndpoints);
  const { config } = ingest(texts.config, { config: DEFAULT_CONFIG }, ingestConfig);
  return errors.length > 0
    ? fail(errors)
    : ok({ cell: { securityGroups: groups, policies, containers, endpoints, config }, warnings });
}
