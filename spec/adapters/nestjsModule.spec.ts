import 'reflect-metadata';

import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { HttpService } from '@nestjs/axios';
import { Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { providers } from '../../lib/index.js';
import * as nestjs from '../../lib/adapters/nestjs.js';

const { RATE_LIMIT_MODULE_OPTIONS, RateLimitModule } = nestjs;
const SECRET = 'module-options-secret-0123456789';

describe('RateLimitModule: what it exports to other modules', () => {
  it('keeps its options, every key in clear, to itself: another module cannot inject them', async () => {
    // eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a Nest module
    class Other {}
    Module({
      providers: [
        {
          provide: 'PEEK',
          useFactory: (options: unknown) => options ?? 'not injectable',
          inject: [{ token: RATE_LIMIT_MODULE_OPTIONS, optional: true }],
        },
      ],
    })(Other);
    const moduleRef = await Test.createTestingModule({
      imports: [
        RateLimitModule.forRoot({
          isGlobal: true,
          limiters: { pd: { provider: providers.pipedrive({ plan: 'advanced' }), key: SECRET } },
        }),
        Other,
      ],
    }).compile();
    expect(moduleRef.get('PEEK', { strict: false })).toBe('not injectable');
    await moduleRef.close();
  });

  it('docs/nestjs.md lists as exported only tokens the module exports', () => {
    const doc = readFileSync(new URL('../../docs/nestjs.md', import.meta.url), 'utf8').split('\n');
    const from = doc.findIndex((line) => line.startsWith('The module provides and exports:'));
    const rows: string[] = [];
    for (const line of doc.slice(from + 1)) {
      if (rows.length > 0 && !line.startsWith('|')) break;
      const cell = /^\| `([^`]+)`/.exec(line)?.[1];
      if (cell !== undefined) rows.push(cell);
    }
    expect(rows.length).toBeGreaterThan(0);
    // Each cell names an export of rx-ratelimit/nestjs, or calls one with 'name'.
    const tokenOf = (cell: string): unknown => {
      const call = /^(\w+)\('name'\)$/.exec(cell);
      const named = (nestjs as Record<string, unknown>)[call?.[1] ?? cell];
      return call && typeof named === 'function' ? (named as (name: string) => unknown)('name') : named;
    };
    const exported = [
      ...(RateLimitModule.forRoot({ limiters: { name: { provider: providers.generic(), key: SECRET } } }).exports ??
        []),
      ...(RateLimitModule.forFeature(['name'], { http: HttpService }).exports ?? []),
    ];
    const unexported = rows.filter((cell) => tokenOf(cell) === undefined || !exported.includes(tokenOf(cell) as never));
    expect(unexported).toEqual([]);
  });
});
