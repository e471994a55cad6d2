import { createHash, randomBytes } from 'node:crypto';

/** Submitter API tokens and per-attempt upload credentials: 256 random bits behind a prefix. */
export function mintSecret(prefix: 'pp' | 'ppu'): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

/** Only this digest is stored. The secrets are random, so no salt or slow hash is needed. */
export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

export function bearerToken(header: string | undefined): string | undefined {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  return match?.[1];
}
