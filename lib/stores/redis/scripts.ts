/**
 * The Lua scripts of the Redis store, each run atomically on the server: the data model and
 * the helpers every script starts with (scriptCommon.ts), admission (scriptAcquire.ts), a
 * response's readings (scriptObserve.ts), and the small scripts that end leases, pause, block
 * and resume (scriptControl.ts).
 */
export { ACQUIRE } from './scriptAcquire.js';
export { MAX_ROLLING_LOG } from './scriptCommon.js';
export { OBSERVE } from './scriptObserve.js';
export { BLOCK, EXHAUST, PAUSE, RELEASE, REPAIR, RESUME, UNBLOCK } from './scriptControl.js';
