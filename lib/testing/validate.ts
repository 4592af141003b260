/**
 * Checks of the simulator's options and limit changes: a `TypeError` naming the bad option.
 */
import type { SimulatorLimits } from './providerLimits.js';
import { SIMULATED_PROVIDERS, type SimulatedProvider, type SimulatorOptions } from './types.js';

/** Is `p` the name of a simulated provider? */
export function isProvider(p: string): p is SimulatedProvider {
  return (SIMULATED_PROVIDERS as readonly string[]).includes(p);
}

function fail(option: string, expected: string): never {
  throw new TypeError(`rx-ratelimit/testing: option \`${option}\` must be ${expected}`);
}

function checkNumber(
  value: unknown,
  option: string,
  opts: { min?: number; positive?: boolean; integer?: boolean },
): void {
  if (value === undefined) return;
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (opts.integer !== true || Number.isInteger(value)) &&
    (opts.positive !== true || value > 0) &&
    (opts.min === undefined || value >= opts.min);
  if (!ok) {
    const what = [
      opts.integer === true ? 'an integer' : 'a finite number',
      opts.positive === true ? '> 0' : opts.min !== undefined ? `>= ${opts.min}` : '',
    ]
      .filter(Boolean)
      .join(' ');
    fail(option, what);
  }
}

const COUNT = { integer: true, min: 0 } as const;
const PLANS = ['essential', 'advanced', 'professional', 'enterprise'];

export function validateLimits(limits: SimulatorLimits, at: string): void {
  const p = at === '' ? '' : `${at}.`;
  const { procore, planningCenter, fieldwire, pipedrive, teos, github, hubspot, atlassian, shopify } = limits;
  checkNumber(procore?.limit, `${p}procore.limit`, COUNT);
  checkNumber(planningCenter?.limit, `${p}planningCenter.limit`, COUNT);
  checkNumber(planningCenter?.highOffsetLimit, `${p}planningCenter.highOffsetLimit`, COUNT);
  checkNumber(fieldwire?.catchAll, `${p}fieldwire.catchAll`, COUNT);
  checkNumber(fieldwire?.legacyLimit, `${p}fieldwire.legacyLimit`, COUNT);
  checkNumber(fieldwire?.legacyWindowMs, `${p}fieldwire.legacyWindowMs`, { positive: true });
  for (const [k, v] of Object.entries(fieldwire?.endpoints ?? {})) {
    if (typeof v !== 'object' || v === null) fail(`${p}fieldwire.endpoints['${k}']`, 'an object { minute, hour }');
    checkNumber(v.minute, `${p}fieldwire.endpoints['${k}'].minute`, COUNT);
    checkNumber(v.hour, `${p}fieldwire.endpoints['${k}'].hour`, COUNT);
    if (v.minute === undefined || v.hour === undefined)
      fail(`${p}fieldwire.endpoints['${k}']`, 'an object { minute, hour }');
  }
  if (
    fieldwire?.legacy !== undefined &&
    (!Array.isArray(fieldwire.legacy) || fieldwire.legacy.some((k) => typeof k !== 'string'))
  ) {
    fail(`${p}fieldwire.legacy`, 'an array of endpoint keys');
  }
  if (pipedrive?.plan !== undefined && !PLANS.includes(pipedrive.plan))
    fail(`${p}pipedrive.plan`, `one of ${PLANS.join(', ')}`);
  checkNumber(pipedrive?.limit, `${p}pipedrive.limit`, COUNT);
  checkNumber(pipedrive?.dailyLimit, `${p}pipedrive.dailyLimit`, COUNT);
  checkNumber(teos?.perMinute, `${p}teos.perMinute`, COUNT);
  checkNumber(teos?.perDay, `${p}teos.perDay`, COUNT);
  checkNumber(teos?.headersAfter, `${p}teos.headersAfter`, COUNT);
  for (const k of ['core', 'search', 'codeSearch', 'graphql', 'contentPerMinute', 'contentPerHour'] as const)
    checkNumber(github?.[k], `${p}github.${k}`, COUNT);
  if (github?.limitedStatus !== undefined && github.limitedStatus !== 403 && github.limitedStatus !== 429)
    fail(`${p}github.limitedStatus`, '403 or 429');
  checkNumber(hubspot?.perInterval, `${p}hubspot.perInterval`, COUNT);
  if (hubspot?.perDay !== false) checkNumber(hubspot?.perDay, `${p}hubspot.perDay`, COUNT);
  checkNumber(hubspot?.searchPerSecond, `${p}hubspot.searchPerSecond`, COUNT);
  if (hubspot?.timeZone !== undefined && !knownTimeZone(hubspot.timeZone))
    fail(`${p}hubspot.timeZone`, 'an IANA time zone that Intl knows, such as "America/New_York"');
  if (atlassian?.quota !== false) checkNumber(atlassian?.quota, `${p}atlassian.quota`, COUNT);
  for (const k of ['readPoints', 'writePoints', 'issueWritesPer2s', 'issueWritesPer30s'] as const)
    checkNumber(atlassian?.[k], `${p}atlassian.${k}`, COUNT);
  for (const [m, v] of Object.entries(atlassian?.burstPerSecond ?? {})) {
    if (!['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].includes(m))
      fail(`${p}atlassian.burstPerSecond.${m}`, 'one of GET, POST, PUT, PATCH, DELETE');
    checkNumber(v, `${p}atlassian.burstPerSecond.${m}`, { integer: true, positive: true });
  }
  for (const k of ['restBucket', 'graphqlBucket'] as const)
    checkNumber(shopify?.[k], `${p}shopify.${k}`, { integer: true, positive: true });
  for (const k of ['restPerSecond', 'graphqlPerSecond'] as const)
    checkNumber(shopify?.[k], `${p}shopify.${k}`, { positive: true });
}

function knownTimeZone(timeZone: unknown): boolean {
  if (typeof timeZone !== 'string' || timeZone.length === 0 || timeZone.length > 64) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

export function validateOptions(options: SimulatorOptions): void {
  if (options.now !== undefined && typeof options.now !== 'function') fail('now', 'a function returning epoch ms');
  checkNumber(options.timeScale, 'timeScale', { positive: true });
  checkNumber(options.clockOffsetMs, 'clockOffsetMs', {});
  checkNumber(options.latencyMs, 'latencyMs', { min: 0 });
  if (options.jsonLayout !== undefined && options.jsonLayout !== 'compact' && options.jsonLayout !== 'doc') {
    fail('jsonLayout', "'compact' or 'doc'");
  }
  if (options.abuse !== undefined && options.abuse !== false) {
    checkNumber(options.abuse['429sBeforeBlock'], "abuse['429sBeforeBlock']", COUNT);
    checkNumber(options.abuse.blockMs, 'abuse.blockMs', { min: 0 });
  }
  validateLimits(options, '');
  (options.limitChanges ?? []).forEach((change, i) => {
    checkNumber(change.at, `limitChanges[${i}].at`, {});
    if (change.at === undefined) fail(`limitChanges[${i}].at`, 'epoch ms');
    if (!isProvider(change.provider)) fail(`limitChanges[${i}].provider`, `one of ${SIMULATED_PROVIDERS.join(', ')}`);
    validateLimits({ [change.provider]: change.set }, `limitChanges[${i}].set`);
  });
}
