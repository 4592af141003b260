import { HttpClient } from '@angular/common/http';
import { afterNextRender, ChangeDetectionStrategy, Component, computed, inject, signal } from '@angular/core';
import { forkJoin, from, mergeMap } from 'rxjs';
import { injectLimiter, limiterStatus, RateLimitStatus } from 'rx-ratelimit/angular';
import { TOKEN } from './app.config';

/** Deals the server render fetches; then the browser fires a burst of BURST more. */
const RENDERED = 5;
const BURST = 60;

@Component({
  selector: 'app-root',
  imports: [RateLimitStatus],
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <h1>Deals</h1>
    <p id="rendered">{{ rendered() }} deals rendered</p>
    <p id="burst" [attr.data-done]="done()" [attr.data-failed]="failed()">
      burst: {{ done() }} done, {{ failed() }} failed
    </p>
    <p id="countdown" [attr.data-waiting]="status().waiting">{{ countdown() }}</p>
    <button id="pause" type="button" (click)="pipedrive.pause(5000)">Pause 5 s</button>
    <rx-rate-limit-status [limiter]="pipedrive" label="Pipedrive API" />
  `,
})
export class App {
  private readonly http = inject(HttpClient);
  readonly pipedrive = injectLimiter('localhost');
  readonly status = limiterStatus(this.pipedrive, { tickMs: 200 });
  readonly rendered = signal(0);
  readonly done = signal(0);
  readonly failed = signal(0);
  /** The ticking signal: resets in … s, while something waits. */
  readonly countdown = computed(() => {
    const s = this.status();
    if (s.pausedForMs > 0) return `paused, ${(s.pausedForMs / 1000).toFixed(1)} s left`;
    const bucket = s.buckets.find((b) => !b.quota && b.limit !== null);
    if (!bucket) return 'budget unknown';
    const reset = bucket.resetInMs === null ? '' : `, resets in ${(bucket.resetInMs / 1000).toFixed(1)} s`;
    return `${bucket.remaining}/${bucket.limit}${reset}`;
  });

  constructor() {
    const deals = Array.from({ length: RENDERED }, (_, i) =>
      this.http.get(`/pipedrive/v1/deals/${i}?api_token=${TOKEN}`),
    );
    forkJoin(deals).subscribe(() => this.rendered.set(RENDERED));
    afterNextRender(() => {
      const params = new URLSearchParams(location.search);
      if (params.has('burst')) this.burst();
      const direct = params.get('direct');
      if (direct)
        this.http.get(`${direct}/pipedrive/v1/deals/1?api_token=direct-token`).subscribe({ error: () => undefined });
    });
  }

  /** Right after hydration: BURST GETs at once, paced by the limiter the server's readings seeded. */
  private burst(): void {
    from(Array.from({ length: BURST }, (_, i) => i))
      .pipe(mergeMap((i) => this.http.get(`/pipedrive/v1/deals/${100 + i}?api_token=${TOKEN}`), 20))
      .subscribe({
        next: () => this.done.update((n) => n + 1),
        error: () => this.failed.update((n) => n + 1),
      });
  }
}
