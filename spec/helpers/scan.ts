/** Every string reachable from `root` (own properties, Maps, Sets, arrays), for secret scans. */
export function reachableStrings(root: unknown, limit = 100_000): string[] {
  const out: string[] = [];
  const seen = new WeakSet<object>();
  const stack: unknown[] = [root];
  while (stack.length && out.length < limit) {
    const v = stack.pop();
    if (typeof v === 'string') out.push(v);
    else if (typeof v === 'object' && v !== null && !seen.has(v)) {
      seen.add(v);
      if (v instanceof Map) for (const [k, x] of v) stack.push(k, x);
      else if (v instanceof Set) for (const x of v) stack.push(x);
      for (const k of Reflect.ownKeys(v)) {
        if (typeof k === 'string') out.push(k);
        const d = Object.getOwnPropertyDescriptor(v, k);
        if (d && 'value' in d) stack.push(d.value);
      }
    }
  }
  return out;
}
