// The file-system edge: a scenario directory (or explicit paths) -> the documents' texts.
import { join } from 'node:path';
import { readTextFile } from '../exec/text-file.js';
import type { ScenarioTexts, SourceText } from '../ingest/cell.js';
import type { InputError } from '../ingest/input-error.js';
import { type Result, fail, ok } from '../model/result.js';

export const SCENARIO_FILES = {
  securityGroups: 'security_groups.json',
  policies: 'policies.json',
  containers: 'containers.json',
  endpoints: 'endpoints.json',
  config: 'config.json',
} as const;

export type DocumentName = keyof typeof SCENARIO_FILES;

export interface ScenarioLocation {
  readonly directory?: string;
  /** Explicit paths override the directory's files and must exist. */
  readonly paths?: Partial<Record<DocumentName, string>>;
  /** Documents that must be present (compile needs containers). */
  readonly required?: readonly DocumentName[];
}

async function readSource(path: string, mustExist: boolean): Promise<Result<SourceText | undefined, InputError>> {
  const text = await readTextFile(path);
  if (text.ok) return ok({ file: path, text: text.value });
  if (text.error.missing && !mustExist) return ok(undefined);
  return fail({ file: path, pointer: '', message: text.error.message });
}

export async function readScenario(location: ScenarioLocation): Promise<Result<ScenarioTexts, InputError[]>> {
  const texts: Partial<Record<DocumentName, SourceText>> = {};
  const errors: InputError[] = [];
  for (const name of Object.keys(SCENARIO_FILES) as DocumentName[]) {
    const explicit = location.paths?.[name];
    const path = explicit ?? (location.directory === undefined ? undefined : join(location.directory, SCENARIO_FILES[name]));
    const required = location.required?.includes(name) ?? false;
    if (path === undefined) {
      if (required)
        errors.push({ file: SCENARIO_FILES[name], pointer: '', message: 'is required: give a scenario directory or its path' });
      continue;
    }
    const source = await readSource(path, explicit !== undefined || required);
    if (!source.ok) errors.push(source.error);
    else if (source.value) texts[name] = source.value;
  }
  return errors.length > 0 ? fail(errors) : ok(texts);
}
