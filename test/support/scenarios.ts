// Compile a scenario directory or generated documents, for tests.
import type { CompiledScenario } from '../../src/scenario/pipeline.js';
import { compileScenario } from '../../src/scenario/pipeline.js';
import { readScenario } from '../../src/scenario/files.js';
import type { GeneratedScenario } from '../bench/cell-generator.js';

export async function compileDirectory(directory: string): Promise<CompiledScenario> {
  const texts = await readScenario({ directory, required: ['containers'] });
  if (!texts.ok) throw new Error(JSON.stringify(texts.error));
  const compiled = compileScenario(texts.value);
  if (!compiled.ok) throw new Error(JSON.stringify(compiled.error));
  return compiled.value;
}

export function compileGenerated(scenario: GeneratedScenario): CompiledScenario {
  const compiled = compileScenario({
    securityGroups: { file: 'security_groups.json', text: JSON.stringify(scenario.securityGroups) },
    containers: { file: 'containers.json', text: JSON.stringify(scenario.containers) },
  });
  if (!compiled.ok) throw new Error(JSON.stringify(compiled.error));
  return compiled.value;
}
