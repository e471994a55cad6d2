import { z } from 'zod';

const dnsLabel = z
  .string()
  .regex(/^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$/, 'must be a lowercase DNS label of at most 32 characters');

/** A capacity pool: how many attempts may run at once, for whom, and for how long. */
export const LaneSchema = z.strictObject({
  name: dnsLabel,
  trust: z.enum(['untrusted', 'trusted']),
  concurrency: z.number().int().min(1).max(10_000),
  maxDeadlineSeconds: z.number().int().min(10).max(7 * 24 * 3600).default(3600),
  /** Infrastructure retries after the first attempt (lease expiry, vanished attempt, …). */
  retryLimit: z.number().int().min(0).max(20).default(2),
});
export type Lane = z.infer<typeof LaneSchema>;

export const defaultLanes: Lane[] = [
  { name: 'intake', trust: 'untrusted', concurrency: 4, maxDeadlineSeconds: 900, retryLimit: 1 },
  { name: 'verify', trust: 'trusted', concurrency: 8, maxDeadlineSeconds: 3600, retryLimit: 2 },
  { name: 'audit', trust: 'trusted', concurrency: 2, maxDeadlineSeconds: 7200, retryLimit: 2 },
  { name: 'replay', trust: 'trusted', concurrency: 2, maxDeadlineSeconds: 7200, retryLimit: 2 },
];
