import { describe, expect, it } from '@jest/globals';

import { providers } from '../../lib/index.js';
import * as profiles from '../../lib/providers/profiles.js';

describe('rx-ratelimit/providers', () => {
  it('holds the same profile functions as the providers object, no more, no less', () => {
    expect(Object.keys(profiles).sort()).toEqual(Object.keys(providers).sort());
    for (const [name, profile] of Object.entries(providers)) {
      expect(profiles[name as keyof typeof profiles]).toBe(profile);
    }
  });
});
