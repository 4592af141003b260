import { safePath, type RequestSummary } from './events.js';
import { methodOf, type RequestInfo } from './request.js';

/** A request as events show it: its method and {@link safePath}, never its headers or query. */
export function requestSummary(id: number, info: RequestInfo, priority: number): RequestSummary {
  return { id, method: methodOf(info), path: safePath(info.url), priority };
}
