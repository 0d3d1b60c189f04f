// Targets asgc speaks: verdicts, jumps and gotos to user chains, REJECT, LOG.
export type Verdict = 'ACCEPT' | 'DROP' | 'RETURN';

export type Target =
  | { readonly kind: 'verdict'; readonly verdict: Verdict }
  | { readonly kind: 'jump'; readonly chain: string }
  | { readonly kind: 'goto'; readonly chain: string }
  | { readonly kind: 'REJECT'; readonly with: string }
  | { readonly kind: 'LOG'; readonly prefix?: string; readonly level?: number }
  /** MARK --set-xmark value/mask: the mark becomes (mark & ~mask) ^ value. */
  | { readonly kind: 'MARK'; readonly value: number; readonly mask: number };

export const ACCEPT: Target = { kind: 'verdict', verdict: 'ACCEPT' };
export const DROP: Target = { kind: 'verdict', verdict: 'DROP' };
export const RETURN: Target = { kind: 'verdict', verdict: 'RETURN' };

export function jump(chain: string): Target {
  return { kind: 'jump', chain };
}

export function goTo(chain: string): Target {
  return { kind: 'goto', chain };
}
