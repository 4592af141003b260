import { provideHttpClient, withFetch, withInterceptors } from '@angular/common/http';
import { type ApplicationConfig } from '@angular/core';
import { provideClientHydration } from '@angular/platform-browser';
import { provideRouter } from '@angular/router';
import { createLimiter, providers } from 'rx-ratelimit';
import { provideRateLimiting, rateLimitingInterceptor } from 'rx-ratelimit/angular';

/** The simulated Pipedrive token (the test's, not a secret). */
export const TOKEN = 'e2e-pipedrive-token';

export const appConfig: ApplicationConfig = {
  providers: [
    provideRouter([]),
    provideClientHydration(),
    // One limiter per application: per request on the server, per tab in the browser.
    provideRateLimiting({
      limiters: {
        // The app calls Pipedrive through its own origin (/pipedrive/... is proxied), on any port.
        localhost: () => createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: TOKEN }),
        // The same API called across origins, directly (the test allows or refuses this page's origin).
        '127.0.0.1': () => createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: 'direct-token' }),
      },
    }),
    provideHttpClient(withFetch(), withInterceptors([rateLimitingInterceptor()])),
  ],
};
