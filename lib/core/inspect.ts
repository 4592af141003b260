/**
 * What `util.inspect` and `console.log` show of our objects, set on each object in its
 * constructor. A `[Symbol.for(…)]()` method in a class body is a computed key with a call in
 * it: a bundler must then keep the whole class (a side effect it cannot rule out) in every
 * bundle that imports its module, used or not.
 */

/** Node's `util.inspect.custom`, without importing `node:util` (this code runs in browsers too). */
export const INSPECT: unique symbol = /* @__PURE__ */ Symbol.for('nodejs.util.inspect.custom') as never;

/** Node's `inspect` as it calls the custom function: `inspect` is absent in older versions. */
export type InspectFn = (
  this: object,
  depth: number,
  options: object,
  inspect?: (v: unknown, o: object) => string,
) => string;

/** Makes `inspect(target)` call `show` (not enumerable: JSON, spreads and `Object.keys` skip it). */
export function showAs(target: object, show: InspectFn): void {
  Object.defineProperty(target, INSPECT, { value: show, configurable: true, writable: true });
}

/** `label` then `view()` as `inspect` shows it (JSON when Node gives no `inspect`). */
export function showView(label: string, view: () => unknown): InspectFn {
  return (_depth, options, inspect) => {
    const v = view();
    return `${label} ${inspect ? inspect(v, options) : JSON.stringify(v)}`;
  };
}
