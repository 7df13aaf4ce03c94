import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { renderConfigDocs } from '../../src/config/docs.ts';
import { configSchema } from '../../src/config/schema.ts';

describe('docs/configuration.md', () => {
  it('is the current rendering of the schema (run `npm run docs:config` after changing it)', () => {
    expect(readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8')).toBe(renderConfigDocs());
  });

  it('describes every option', () => {
    const undocumented: string[] = [];
    const walk = (s: Record<string, unknown>, path: string) => {
      const props = (s['properties'] ?? (s['items'] as Record<string, unknown> | undefined)?.['properties']) as
        Record<string, Record<string, unknown>> | undefined;
      for (const [k, v] of Object.entries(props ?? {})) {
        const p = path ? `${path}.${k}` : k;
        if (v['properties'] || (v['items'] as Record<string, unknown> | undefined)?.['properties']) walk(v, p);
        else if (!v['description']) undocumented.push(p);
      }
    };
    walk(z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>, '');
    expect(undocumented.filter((p) => !p.startsWith('telemetry'))).toEqual([]);
  });
});
