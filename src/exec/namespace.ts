// Commands that act on a network namespace's tables run inside it with `ip netns exec`.

/** Run `argv` inside a network namespace (ip netns exec), or as is when none is given. */
export function inNamespace(namespace: string | undefined, argv: readonly string[]): string[] {
  return namespace === undefined ? [...argv] : ['ip', 'netns', 'exec', namespace, ...argv];
}
