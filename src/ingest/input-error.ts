// Every problem with an input names the document, the JSON pointer and the reason.
export interface InputError {
  readonly file: string;
  /** RFC 6901 pointer into the document; "" is the document itself. */
  readonly pointer: string;
  readonly message: string;
}

export function escapePointerToken(token: string | number): string {
  return String(token).replace(/~/g, '~0').replace(/\//g, '~1');
}

export function pointer(...tokens: (string | number)[]): string {
  return tokens.map((token) => `/${escapePointerToken(token)}`).join('');
}

const NAMED_ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** Control characters (a key with a newline, say) as escapes: one error is always one line. */
export function oneLine(text: string): string {
  return text.replace(
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g,
    (character) => NAMED_ESCAPES[character] ?? `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

export function formatInputError(error: InputError): string {
  const parts = error.pointer === '' ? [error.file, error.message] : [error.file, error.pointer, error.message];
  return parts.map(oneLine).join(': ');
}

/** Collects errors for one document, so stages can report everything wrong at once. */
export class ErrorSink {
  readonly errors: InputError[] = [];
  constructor(readonly file: string) {}

  add(pointerText: string, message: string): void {
    this.errors.push({ file: this.file, pointer: pointerText, message });
  }
}
