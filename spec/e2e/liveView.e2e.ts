/**
 * The demo's live view in a real browser: `npm run demo -- --web` is started as a child process, headless Chromium
 * (Debian's, through playwright-core) opens the URL it prints, and the page must show every provider, numbers that
 * move while requests flow, a pause with its reason and end time, and the finished run with its summary.
 *
 * Run with `npm run test:e2e`. `UPDATE_SCREENSHOT=1` also writes docs/live-view.png (otherwise the screenshot goes
 * to the OS temp directory, so that a test run leaves the working tree clean).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chromium, type Browser, type Page } from 'playwright-core';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const PROVIDERS = ['procore', 'planningCenter', 'fieldwire', 'pipedrive', 'teos'];
/** The demo's credential: it must never reach the page. */
const TOKEN = 'demo-token-not-a-secret';
const screenshotPath = process.env['UPDATE_SCREENSHOT']
  ? join(root, 'docs/live-view.png')
  : join(tmpdir(), 'rx-ratelimit-live-view.png');

interface CardNumbers {
  id: string;
  done: number;
  sent: number;
  total: number;
  text: string;
}

let demo: ChildProcessWithoutNullStreams | undefined;
let output = '';
let browser: Browser | undefined;
let page: Page;
let url: string;
const pageErrors: string[] = [];

function waitForOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  return new Promise((resolvePromise, reject) => {
    const check = () => {
      const match = pattern.exec(output);
      if (match) {
        clearInterval(timer);
        clearTimeout(timeout);
        resolvePromise(match);
      }
    };
    const timer = setInterval(check, 50);
    const timeout = setTimeout(() => {
      clearInterval(timer);
      reject(new Error(`no ${String(pattern)} in the demo's output within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    check();
  });
}

function cards(): Promise<CardNumbers[]> {
  return page.$$eval('[data-provider].card', (els) =>
    els.map((e) => {
      const d = (e as HTMLElement).dataset;
      return {
        id: d['provider'] ?? '',
        done: Number(d['done'] ?? NaN) + Number(d['failed'] ?? NaN),
        sent: Number(d['sent'] ?? NaN),
        total: Number(d['total'] ?? NaN),
        text: (e as HTMLElement).innerText,
      };
    }),
  );
}

const describeIfBrowser = existsSync(CHROMIUM) ? describe : describe.skip;
if (!existsSync(CHROMIUM)) console.warn(`live view e2e skipped: no browser at ${CHROMIUM} (set CHROMIUM_PATH)`);

describeIfBrowser('npm run demo -- --web (headless Chromium)', () => {
  beforeAll(async () => {
    // Two rounds: long enough to look at twice while requests flow, short enough for CI (~30 s).
    demo = spawn(process.execPath, ['--import', 'tsx', 'demo/demo.ts', '--web', '--port=0', '--rounds=2'], {
      cwd: root,
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    demo.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    demo.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    url = (await waitForOutput(/Live view: (http:\/\/127\.0\.0\.1:\d+\/)/, 30_000))[1]!;

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
    page = await browser.newPage({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text());
    });
    // Anything fetched from elsewhere than the demo would fail in CI (no internet): there must be none.
    page.on('request', (r) => {
      if (!r.url().startsWith(url)) pageErrors.push(`request to ${r.url()}`);
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    if (demo && demo.exitCode === null) {
      demo.kill('SIGKILL');
    }
  });

  it('serves the stream with no secret in it', async () => {
    const controller = new AbortController();
    const res = await fetch(`${url}events`, { signal: controller.signal });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('event: state')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    controller.abort();
    expect(text).toContain('event: init');
    expect(text).toContain('"key":"key_');
    expect(text).not.toContain(TOKEN);
  });

  it('shows every provider and its buckets', async () => {
    await page.goto(url);
    await page.waitForFunction(
      (n) => document.querySelectorAll('.card[data-provider][data-sent]').length === n,
      PROVIDERS.length,
    );
    expect((await cards()).map((c) => c.id)).toEqual(PROVIDERS);
    for (const id of PROVIDERS) {
      const card = page.locator(`.card[data-provider="${id}"]`);
      await card.locator('.bucket').first().waitFor();
      await expect(card.locator('.bucket-num').first().innerText()).resolves.toMatch(/^\d[\d,]* \/ \d/);
      await expect(card.locator('.reset').first().innerText()).resolves.toMatch(/resets in|resetting|unknown/);
    }
    // Names of the buckets as the providers report them.
    await expect(page.locator('.card[data-provider="pipedrive"] .bucket').count()).resolves.toBeGreaterThanOrEqual(1);
    await expect(page.locator('.card[data-provider="fieldwire"] .bucket').count()).resolves.toBeGreaterThanOrEqual(2);
    expect(await page.content()).not.toContain(TOKEN);
  });

  it('updates while requests flow', async () => {
    const first = await cards();
    await page.waitForTimeout(1500);
    const second = await cards();
    const sum = (cs: CardNumbers[], k: 'done' | 'sent') => cs.reduce((a, c) => a + c[k], 0);
    expect(sum(second, 'done')).toBeGreaterThan(sum(first, 'done'));
    expect(sum(second, 'sent')).toBeGreaterThan(sum(first, 'sent'));
    // Every provider still running shows something new (counts, remaining, countdowns).
    for (const [i, c] of first.entries()) if (c.done < c.total) expect(second[i]!.text).not.toEqual(c.text);
    await expect(page.locator('body').getAttribute('data-phase')).resolves.toBe('running');
    await expect(page.locator('#run-text').innerText()).resolves.toMatch(/^Running/);
  });

  it('shows a pause with its reason and end time', async () => {
    const card = page.locator('.card[data-provider="teos"]');
    await card.locator('button.pause-button').click();
    const banner = card.locator('.banner.pause');
    await banner.waitFor({ state: 'visible', timeout: 5000 });
    await expect(banner.innerText()).resolves.toMatch(/Paused \(manual\) until \d\d:\d\d:\d\d\.\d{3} · \d+\.\d s left/);
    await expect(card.getAttribute('data-status')).resolves.toBe('paused');
    // For the docs: the run in full flow, one limiter paused.
    await page.waitForTimeout(400);
    await page.screenshot({ path: screenshotPath, fullPage: true });
    await banner.waitFor({ state: 'hidden', timeout: 10_000 });
  });

  it('shows when the run has finished, with the summary', async () => {
    // Normally ~30 s from the start; generous for a loaded CI machine.
    await page.waitForSelector('body[data-phase="finished"]', { timeout: 180_000 });
    await expect(page.locator('#run-text').innerText()).resolves.toMatch(/^Run finished in /);
    await expect(page.locator('#summary tbody tr').count()).resolves.toBe(PROVIDERS.length);
    for (const c of await cards()) expect(c.done).toBe(c.total);
    for (const id of PROVIDERS)
      await expect(page.locator(`.card[data-provider="${id}"]`).getAttribute('data-status')).resolves.toBe('done');
    // No 429 and no 403 reached the demo's limiters.
    const rows = await page.$$eval('#summary tbody tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')),
    );
    // Named by provider, so that a failure says which limiter met them.
    expect(rows.map((row) => [row[0], row[3], row[4]])).toEqual(rows.map((row) => [row[0], '0', '0']));
    await page.screenshot({ path: join(tmpdir(), 'rx-ratelimit-live-view-finished.png'), fullPage: true });
    await waitForOutput(/Run finished\. The live view stays up/, 10_000);
    expect(pageErrors).toEqual([]);
  }, 200_000);

  it('stops on SIGTERM, and the page says so', async () => {
    const exited = new Promise<number | null>((r) => demo!.once('exit', (code) => r(code)));
    demo!.kill('SIGTERM');
    await expect(exited).resolves.toBe(0);
    await page.waitForFunction(() => document.querySelector('#run-text')?.textContent?.includes('demo stopped'));
    expect(output).not.toContain(TOKEN);
  });
});
