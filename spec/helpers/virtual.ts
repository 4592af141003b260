import { expect } from '@jest/globals';
import { asyncScheduler } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';

/** Runs `body` in RxJS virtual time; every asyncScheduler wait inside is virtual. */
export function inVirtualTime<T>(body: (helpers: { now: () => number }) => T): T {
  const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
  return scheduler.run(() => body({ now: () => asyncScheduler.now() }));
}
