import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LogDigest } from '../task-pod/log-digest.js';

describe('the evidence log excerpt', () => {
  it('carries no NUL, which proof output may print and the API refuses, while the digest is of the bytes as printed', () => {
    const printed = Buffer.from('coqc: \u0000\u0000 hostile output\n');
    const short = new LogDigest();
    short.update(printed);
    const summary = short.summary();
    expect(summary.excerpt).not.toContain('\u0000');
    expect(summary.excerpt).toBe('coqc: \uFFFD\uFFFD hostile output\n');
    expect(summary.digest).toBe(`sha256:${createHash('sha256').update(printed).digest('hex')}`);

    const long = new LogDigest();
    long.update(Buffer.from(`\u0000${'x'.repeat(40_000)}\u0000`));
    const cut = long.summary();
    expect(cut.truncated).toBe(true);
    expect(cut.excerpt).not.toContain('\u0000');
    expect(cut.excerpt.startsWith('\uFFFD')).toBe(true);
    expect(cut.excerpt.endsWith('\uFFFD')).toBe(true);
  });
});
