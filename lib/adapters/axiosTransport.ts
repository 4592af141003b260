/**
 * The transport: where the axios adapters read the raw answer. Resolves an adapter setting to
 * axios's function (loading axios's `getAdapter` on first need) and records what the transport
 * answered before any response interceptor can replace it.
 */
import type { AxiosAdapter, AxiosInstance, AxiosRequestConfig, InternalAxiosRequestConfig } from 'axios';
import type { ResponseExtractor } from '../core/response.js';
import { sharesAs } from '../core/sharing.js';
import { toResponseLike } from './axiosResponse.js';

/** axios's `getAdapter`: turns an adapter setting (`'http'`, `['xhr', 'http', 'fetch']`…) into a function. */
type GetAdapter = (adapters: unknown, config?: unknown) => AxiosAdapter;

/** What axios uses when neither the request nor the instance names an adapter. */
const DEFAULT_ADAPTERS: readonly string[] = ['xhr', 'http', 'fetch'];

let importedGetAdapter: Promise<GetAdapter | undefined> | undefined;

/**
 * axios's own `getAdapter`, loaded on first need: an instance from `axios.create()` carries
 * its adapter setting by name only. The default `axios` export has it itself.
 */
function axiosGetAdapter(instance: unknown): GetAdapter | Promise<GetAdapter | undefined> {
  const own = (instance as { getAdapter?: unknown } | undefined)?.getAdapter;
  if (typeof own === 'function') return own as GetAdapter;
  importedGetAdapter ??= import('axios').then(
    (m: unknown) => {
      const mod = m as { getAdapter?: unknown; default?: { getAdapter?: unknown } };
      const found = mod.getAdapter ?? mod.default?.getAdapter;
      return typeof found === 'function' ? (found as GetAdapter) : undefined;
    },
    () => undefined,
  );
  return importedGetAdapter;
}

/** The adapter function an adapter setting stands for, resolved as axios resolves it. */
export async function resolveAdapter(
  setting: unknown,
  config: InternalAxiosRequestConfig,
  instance: unknown,
): Promise<AxiosAdapter> {
  if (typeof setting === 'function') return setting as AxiosAdapter;
  const getAdapter = await axiosGetAdapter(instance);
  if (!getAdapter) {
    throw new Error(
      'rx-ratelimit/axios: cannot load axios to resolve the adapter; give the instance an adapter function',
    );
  }
  return getAdapter(setting ?? DEFAULT_ADAPTERS, config);
}

/** Adapters made by {@link captureAdapter} and by `rateLimitInterceptor`, which never wrap each other twice. */
export const OUR_ADAPTERS = new WeakSet<AxiosAdapter>();

/**
 * @internal A per-subscription recorder of the raw answer of the transport, for the RxJS
 * adapters (`rateLimitedRequest`, NestJS `rateLimitedHttp`): the config to send, with an
 * adapter that notes the response or error before any response interceptor can replace it
 * (an SDK that resolves with the body and rejects with the error's body), and the extractor
 * that reads what it noted, else the value itself. Call `begin()` as each attempt is sent.
 */
export function captureRaw(
  instance: AxiosInstance | undefined,
  config: AxiosRequestConfig,
): { readonly config: AxiosRequestConfig; readonly extract: ResponseExtractor; readonly begin: () => void } {
  // No instance (a mocked HttpService): nothing to wrap; the value is all there is.
  if (!instance || typeof instance.request !== 'function') {
    return { config, extract: toResponseLike, begin: () => undefined };
  }
  const noted: { raw?: unknown } = {};
  const setting: unknown = config.adapter ?? instance.defaults?.adapter;
  const adapter: AxiosAdapter = async (c) => {
    const send = await resolveAdapter(setting, c, instance);
    try {
      const response = await send(c);
      noted.raw = response;
      return response;
    } catch (error) {
      noted.raw = error;
      throw error;
    }
  };
  OUR_ADAPTERS.add(adapter);
  // One per request, reading alike for every request of the instance: identical GETs still share.
  const extract: ResponseExtractor = sharesAs(
    (x) => ('raw' in noted ? toResponseLike(noted.raw) : undefined) ?? toResponseLike(x),
    instance,
  );
  const begin = (): void => {
    delete noted.raw;
  };
  return { config: { ...config, adapter }, extract, begin };
}
