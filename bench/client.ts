/**
 * One competitor on one scenario, in a process of its own (started by `bench/run.ts` over IPC),
 * so that every run starts from the same cold state and none inherits another's timers, sockets
 * or heap. The simulator runs in the parent process.
 *
 * Protocol: parent → `setup`; client warms up (one request per HTTP client to a route the
 * simulator does not count) → `ready`; parent → `go` with the start time and deadline; client →
 * `result`, then exits.
 */
import axios, { type AxiosAdapter } from 'axios';
import { COMPETITORS, RUNNERS, VARIANTS, WARM_UPS, type ClientContext, type CompetitorId } from './competitors.js';
import { scenarioById, shareOf } from './scenarios.js';

export interface SetupMessage {
  readonly type: 'setup';
  readonly scenario: string;
  readonly competitor: CompetitorId;
  readonly root: string;
  readonly base: string;
  /** Which of the scenario's processes this is (0-based; 0 when there is one). */
  readonly part: number;
  /** Unique per run: names the run's Redis keys in the multi-process scenario. */
  readonly runId: string;
}

export interface GoMessage {
  readonly type: 'go';
  readonly t0: number;
  readonly deadline: number;
}

export interface RequestRecord {
  readonly settledAt: number | null;
  readonly status: number | null;
  readonly error: string | null;
}

/**
 * One HTTP attempt as the client saw it: sent, answered (0: no answer), status (0: network
 * error), and the order in which it reached the server (the bench's `X-Bench-Seq` response
 * header; 0 when unknown).
 */
export type Attempt = readonly [sentAt: number, doneAt: number, status: number, seq: number];

/** Response header the bench's server adds: the 1-based order in which the request arrived. */
export const SEQ_HEADER = 'x-bench-seq';
const seqOf = (v: unknown) => (typeof v === 'string' ? Number(v) || 0 : 0);

export interface ResultMessage {
  readonly type: 'result';
  readonly t0: number;
  /** How this process's requests (`shareOf(sc, part)`, in that order) ended. */
  readonly records: RequestRecord[];
  readonly attempts: Attempt[];
  readonly timedOut: boolean;
  readonly crashed: string | null;
  /** CPU time of the client process during the run (user + system), ms. */
  readonly cpuMs: number;
}

const attempts: Attempt[] = [];

const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const sentAt = Date.now();
  try {
    const res = await realFetch(input, init);
    attempts.push([sentAt, Date.now(), res.status, seqOf(res.headers.get(SEQ_HEADER))]);
    return res;
  } catch (e) {
    attempts.push([sentAt, Date.now(), 0, 0]);
    throw e;
  }
};

const httpAdapter = axios.getAdapter('http');
const timedAdapter: AxiosAdapter = async (config) => {
  const sentAt = Date.now();
  try {
    const res = await httpAdapter(config);
    attempts.push([sentAt, Date.now(), res.status, seqOf(res.headers[SEQ_HEADER])]);
    return res;
  } catch (e) {
    const res = axios.isAxiosError(e) ? e.response : undefined;
    attempts.push([sentAt, Date.now(), res?.status ?? 0, seqOf(res?.headers[SEQ_HEADER])]);
    throw e;
  }
};

function send(message: ResultMessage | { type: 'ready' }): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) throw new Error('bench/client.ts runs under bench/run.ts (needs an IPC channel)');
    process.send(message, () => resolve());
  });
}

function once<T>(type: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: { type?: string }) => {
      if (m.type !== type) return;
      process.off('message', on);
      resolve(m as T);
    };
    process.on('message', on);
  });
}

async function main(): Promise<void> {
  const setup = await once<SetupMessage>('setup');
  if (![...COMPETITORS, ...VARIANTS].includes(setup.competitor))
    throw new Error(`unknown competitor ${setup.competitor}`);
  const sc = scenarioById(setup.scenario);
  const runner = RUNNERS[setup.competitor];

  const indices = shareOf(sc, setup.part);
  const records: Array<RequestRecord | undefined> = Array.from({ length: sc.requests }, () => undefined);
  const ctx: ClientContext = {
    sc,
    indices,
    part: setup.part,
    runId: setup.runId,
    base: setup.base,
    axiosAdapter: timedAdapter,
    settle(i, status, error) {
      if (records[i] === undefined) records[i] = { settledAt: Date.now(), status, error: error ?? null };
    },
  };

  // Warm-up, the same for all: both HTTP clients open as many connections as there are streams
  // (a route the simulator answers 404 and does not count), and the competitor's library runs
  // once on a throwaway limiter.
  const warm = `${setup.root}/warm-up`;
  await Promise.all(
    Array.from({ length: sc.streams }, async () => {
      await (await realFetch(warm)).arrayBuffer();
      await axios.get(warm, { adapter: httpAdapter, validateStatus: () => true });
    }),
  );
  await WARM_UPS[setup.competitor](ctx, warm);
  attempts.length = 0;

  const go = once<GoMessage>('go');
  await send({ type: 'ready' });
  const { t0, deadline } = await go;
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, t0 - Date.now())));

  const cpuBefore = process.cpuUsage();
  let crashed: string | null = null;
  process.on('unhandledRejection', (e) => {
    crashed ??= `unhandled rejection: ${String(e)}`;
  });
  const finished = runner(ctx).then(
    () => false,
    (e: unknown) => {
      crashed = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      return false;
    },
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), Math.max(0, deadline - Date.now()));
  });
  const timedOut = await Promise.race([finished, timeout]);
  clearTimeout(timer);
  const cpu = process.cpuUsage(cpuBefore);
  await send({
    type: 'result',
    t0,
    records: indices.map((i) => records[i] ?? { settledAt: null, status: null, error: 'lost' }),
    attempts,
    timedOut,
    crashed,
    cpuMs: (cpu.user + cpu.system) / 1000,
  });
  // Whatever a competitor left behind (timers, sockets, sleeping retries) ends with the process.
  process.exit(0);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
