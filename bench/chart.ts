/**
 * The chart: for one scenario, one panel per competitor, requests per server window over time
 * (accepted, 429, 403, stacked) against the limit in force. Plain SVG strings, no dependency.
 */
import type { Scenario } from './scenarios.js';

/** A request as the simulator saw it: ms after the start, status. */
export type Arrival = readonly [t: number, status: number];

export interface WindowBin {
  /** ms after the start. */
  readonly start: number;
  ok: number;
  limited: number;
  blocked: number;
}

/**
 * The server's windows, rebuilt from arrival times the way the simulator counts them: windows
 * that start at their first request (Planning Center, Pipedrive), clock-aligned windows (Procore,
 * Fieldwire; `serverStart` is the start on the server clock), or for rolling windows, bins of
 * one window from the start.
 */
export function windowsOf(sc: Scenario, arrivals: readonly Arrival[], serverStart: number): WindowBin[] {
  const W = sc.windowMs;
  const bins: WindowBin[] = [];
  let current: WindowBin | undefined;
  const sorted = [...arrivals].sort((a, b) => a[0] - b[0]);
  for (const [t, status] of sorted) {
    let start: number;
    if (sc.windowKind === 'first-request') {
      start = current && t >= current.start && t < current.start + W ? current.start : t;
    } else if (sc.windowKind === 'aligned') {
      start = Math.floor((serverStart + t) / W) * W - serverStart;
    } else {
      start = Math.floor(t / W) * W;
    }
    if (!current || current.start !== start) {
      current = { start, ok: 0, limited: 0, blocked: 0 };
      bins.push(current);
    }
    if (status === 429) current.limited++;
    else if (status === 403) current.blocked++;
    else current.ok++;
  }
  return bins;
}

export interface ChartPanel {
  readonly name: string;
  readonly note: string;
  readonly bins: readonly WindowBin[];
  /** When the limit changed in this run (ms after the start), if it did. */
  readonly changeAt?: number | undefined;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const f = (n: number) => (Math.round(n * 10) / 10).toString();

const COLORS = { ok: '#4c9f70', limited: '#d64541', blocked: '#222222', limit: '#d64541', grid: '#e4e4e4' };

/** An SVG of the panels, one below the other, on a shared time axis. */
export function chartSvg(sc: Scenario, panels: readonly ChartPanel[], title: string): string {
  const W = sc.windowMs;
  const width = 920;
  const left = 56;
  const right = 20;
  const top = 64;
  const panelH = 118;
  const gap = 46;
  const plotW = width - left - right;
  const lastStart = Math.max(0, ...panels.flatMap((p) => p.bins.map((b) => b.start)));
  const maxT = Math.min(Math.ceil((lastStart + W) / 1000) * 1000, 8 * W);
  const maxCount = Math.max(
    sc.limit,
    ...panels.flatMap((p) => p.bins.filter((b) => b.start < maxT).map((b) => b.ok + b.limited + b.blocked)),
  );
  const yMax = Math.ceil((maxCount * 1.1) / 25) * 25;
  const height = top + panels.length * (panelH + gap) + 10;
  const x = (t: number) => left + (Math.min(t, maxT) / maxT) * plotW;
  const limitAt = (t: number, changeAt: number | undefined) =>
    sc.limitChange && changeAt !== undefined && t >= changeAt ? sc.limitChange.newLimit : sc.limit;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${left}" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`,
  );
  // Legend.
  const legend: Array<[string, string, boolean]> = [
    ['accepted (2xx)', COLORS.ok, false],
    ['429', COLORS.limited, false],
    ['403 (blocked)', COLORS.blocked, false],
    ['limit in force', COLORS.limit, true],
  ];
  let lx = left;
  for (const [label, color, line] of legend) {
    out.push(
      line
        ? `<line x1="${lx}" y1="40" x2="${lx + 16}" y2="40" stroke="${color}" stroke-width="2" stroke-dasharray="5 3"/>`
        : `<rect x="${lx}" y="34" width="16" height="12" fill="${color}"/>`,
      `<text x="${lx + 22}" y="44">${esc(label)}</text>`,
    );
    lx += 40 + label.length * 7;
  }
  out.push(
    `<text x="${width - right}" y="44" text-anchor="end" fill="#555">bars: requests that reached the server in each of its ${W / 1000} s windows</text>`,
  );

  panels.forEach((p, k) => {
    const y0 = top + k * (panelH + gap) + 18;
    const y = (v: number) => y0 + panelH - (v / yMax) * panelH;
    out.push(`<text x="${left}" y="${y0 - 6}" font-weight="bold">${esc(p.name)}</text>`);
    out.push(`<text x="${left + 130}" y="${y0 - 6}" fill="#444">${esc(p.note)}</text>`);
    // Grid and axes.
    for (let v = 0; v <= yMax; v += yMax > 100 ? 50 : 25) {
      out.push(
        `<line x1="${left}" y1="${f(y(v))}" x2="${left + plotW}" y2="${f(y(v))}" stroke="${COLORS.grid}"/>`,
        `<text x="${left - 6}" y="${f(y(v) + 4)}" text-anchor="end" fill="#555">${v}</text>`,
      );
    }
    for (let t = 0; t <= maxT; t += 1000) {
      out.push(
        `<line x1="${f(x(t))}" y1="${y0 + panelH}" x2="${f(x(t))}" y2="${y0 + panelH + 4}" stroke="#888"/>`,
        `<text x="${f(x(t))}" y="${y0 + panelH + 16}" text-anchor="middle" fill="#555">${t / 1000} s</text>`,
      );
    }
    // Bars.
    for (const b of p.bins) {
      if (b.start >= maxT) continue;
      const bx = x(b.start) + 1;
      const bw = Math.max(1, x(Math.min(b.start + W, maxT)) - x(b.start) - 2);
      let base = 0;
      for (const [count, color] of [
        [b.ok, COLORS.ok],
        [b.limited, COLORS.limited],
        [b.blocked, COLORS.blocked],
      ] as const) {
        if (count <= 0) continue;
        out.push(
          `<rect x="${f(bx)}" y="${f(y(base + count))}" width="${f(bw)}" height="${f(y(base) - y(base + count))}" fill="${color}"/>`,
        );
        base += count;
      }
      out.push(
        `<text x="${f(bx + bw / 2)}" y="${f(y(base) - 4)}" text-anchor="middle" font-size="11" fill="#333">${b.ok}${b.limited ? ` +${b.limited}` : ''}${b.blocked ? ` +${b.blocked}` : ''}</text>`,
      );
    }
    // The limit in force, as a step over time.
    const change = p.changeAt !== undefined && p.changeAt < maxT ? p.changeAt : undefined;
    const steps: number[] = [0];
    if (change !== undefined) steps.push(change);
    steps.push(maxT);
    const points: string[] = [];
    for (let s = 0; s + 1 < steps.length; s++) {
      const from = steps[s] ?? 0;
      const to = steps[s + 1] ?? maxT;
      const lim = limitAt(from, change);
      points.push(`${f(x(from))},${f(y(lim))}`, `${f(x(to))},${f(y(lim))}`);
    }
    out.push(
      `<polyline points="${points.join(' ')}" fill="none" stroke="${COLORS.limit}" stroke-width="2" stroke-dasharray="6 4"/>`,
    );
    if (sc.limitChange && change !== undefined) {
      const cx = f(x(change));
      out.push(
        `<line x1="${cx}" y1="${y0}" x2="${cx}" y2="${y0 + panelH}" stroke="#999" stroke-dasharray="2 3"/>`,
        `<text x="${f(x(change) + 4)}" y="${y0 + 11}" fill="#777" font-size="11">limit → ${sc.limitChange.newLimit}, unannounced</text>`,
      );
    }
    out.push(`<line x1="${left}" y1="${y0 + panelH}" x2="${left + plotW}" y2="${y0 + panelH}" stroke="#888"/>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
