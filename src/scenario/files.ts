// The file-system edge: a scenario directory (or explicit paths) -> the documents' texts.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
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
  try {
    return ok({ file: path, text: await readFile(path, 'utf8') });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !mustExist) return ok(undefined);
    const reason = code === 'ENOENT' ? 'no such file' : (error as Error).message;
    return fail({ file: path, pointer: '', message: `cannot be read: ${reason}` });
  }
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
