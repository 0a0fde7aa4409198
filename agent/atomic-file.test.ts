import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeFileAtomic } from './atomic-file.js';

describe('writeFileAtomic', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tm-atomic-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('replaces the content whole, mode 0600, and leaves no temp file', () => {
    const f = path.join(dir, 'state.json');
    writeFileSync(f, 'old');
    writeFileAtomic(f, '{"new":true}');
    expect(readFileSync(f, 'utf8')).toBe('{"new":true}');
    expect(statSync(f).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['state.json']);
  });

  it('a stale temp file from a crash mid-write does not matter', () => {
    const f = path.join(dir, 'k');
    writeFileSync(`${f}.tmp`, 'torn');
    writeFileAtomic(f, 'whole');
    expect(readFileSync(f, 'utf8')).toBe('whole');
  });
});
