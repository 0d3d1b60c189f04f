// Structured logs: one JSON object per line, with a level and an event name.
export const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type Level = (typeof LEVELS)[number];

export interface Logger {
  log(level: Level, event: string, fields?: Record<string, unknown>): void;
}

export class JsonLogger implements Logger {
  constructor(
    private readonly write: (line: string) => void,
    private readonly minimum: Level = 'info',
    private readonly now: () => Date = () => new Date(),
  ) {}

  log(level: Level, event: string, fields: Record<string, unknown> = {}): void {
    if (LEVELS.indexOf(level) < LEVELS.indexOf(this.minimum)) return;
    this.write(`${JSON.stringify({ ts: this.now().toISOString(), level, event, ...fields })}\n`);
  }
}

/** Keeps what was logged (tests). */
export class MemoryLogger implements Logger {
  readonly entries: { level: Level; event: string; fields: Record<string, unknown> }[] = [];

  log(level: Level, event: string, fields: Record<string, unknown> = {}): void {
    this.entries.push({ level, event, fields });
  }
}
