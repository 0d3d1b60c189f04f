// Structured logs: one JSON object per line, with a level and an event name.
export const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type Level = (typeof LEVELS)[number];

export interface Logger {
  log(level: Level, event: string, fields?: Record<string, unknown>): void;
  /** The least level written from now on (VPA's /log-level). */
  setLevel?(level: Level): void;
}

export class JsonLogger implements Logger {
  constructor(
    private readonly write: (line: string) => void,
    private minimum: Level = 'info',
    private readonly now: () => Date = () => new Date(),
    /** Fields on every line (VPA's log_prefix as `source`, as lager writes it). */
    private readonly fixed: Record<string, unknown> = {},
  ) {}

  setLevel(level: Level): void {
    this.minimum = level;
  }

  log(level: Level, event: string, fields: Record<string, unknown> = {}): void {
    if (LEVELS.indexOf(level) < LEVELS.indexOf(this.minimum)) return;
    this.write(`${JSON.stringify({ ts: this.now().toISOString(), level, event, ...this.fixed, ...fields })}\n`);
  }
}

/** Keeps what was logged (tests). */
export class MemoryLogger implements Logger {
  readonly entries: { level: Level; event: string; fields: Record<string, unknown> }[] = [];

  level: Level = 'debug';

  setLevel(level: Level): void {
    this.level = level;
  }

  log(level: Level, event: string, fields: Record<string, unknown> = {}): void {
    this.entries.push({ level, event, fields });
  }
}
