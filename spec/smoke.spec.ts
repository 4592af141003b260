import { describe, expect, it } from '@jest/globals';
import { of } from 'rxjs';
describe('smoke', () => { it('runs', async () => { expect(await new Promise((r) => of(1).subscribe(r))).toBe(1); }); });
