/**
 * `next(value)` at once when `value` is already at hand, after it otherwise. For hot paths whose
 * inputs are usually cached: each await costs a promise and a trip through the microtask queue.
 * Only native promises count as pending; callers hand over their own functions' results.
 */
export function whenReady<T, R>(value: T | Promise<T>, next: (value: T) => R): R | Promise<Awaited<R>> {
  return value instanceof Promise ? (value.then(next) as Promise<Awaited<R>>) : next(value)
}
