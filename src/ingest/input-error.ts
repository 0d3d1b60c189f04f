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

export function formatInputError(error: InputError): string {
  return error.pointer === '' ? `${error.file}: ${error.message}` : `${error.file}: ${error.pointer}: ${error.message}`;
}

/** Collects errors for one document, so stages can report everything wrong at once. */
export class ErrorSink {
  readonly errors: InputError[] = [];
  constructor(readonly file: string) {}

  add(pointerText: string, message: string): void {
    this.errors.push({ file: this.file, pointer: pointerText, message });
  }
}
