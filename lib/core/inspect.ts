/**
 * What `util.inspect` and `console.log` show of our objects, set by their constructors. A
 * `[Symbol.for(…)]()` method in a class body is a computed key with a call in it: a bundler
 * must then keep the whole class (a side effect it cannot rule out) in every bundle that
 * imports its module, used or not. Limiters and pools set it on their prototype, once: set on
 * each, it was two closures on each of 10,000 tenants' limiters.
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

/**
 * Makes `inspect` of `target`, and of every other instance of its class, call `show` with the
 * instance as `this`: set once, on the prototype, so that an instance holds nothing for it.
 */
export function showAllAs(target: object, show: InspectFn): void {
  const proto = Object.getPrototypeOf(target) as object;
  if (!Object.prototype.hasOwnProperty.call(proto, INSPECT))
    Object.defineProperty(proto, INSPECT, { value: show, configurable: true, writable: true });
}

/** `label` then `view(this)` as `inspect` shows it (JSON when Node gives no `inspect`). */
export function showView<T extends object>(label: string, view: (self: T) => unknown): InspectFn {
  return function (this: object, _depth, options, inspect) {
    const v = view(this as T);
    return `${label} ${inspect ? inspect(v, options) : JSON.stringify(v)}`;
  };
}
