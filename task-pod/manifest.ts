import * as z from 'zod';

/** What the fetch container found and checked, for the reporter to bind the evidence to. */
export const ManifestSchema = z.strictObject({
  url: z.string().min(1),
  commit: z.string().regex(/^[0-9a-f]{40}$/),
  /**
   * `git rev-parse HEAD^{tree}` of the checked-out commit. Every file of the source volume was
   * verified against this tree's blobs after checkout (`verifyWorkTree`), so it names what the prover read.
   */
  treeHash: z.string().regex(/^[0-9a-f]{40}$/),
  subdirectory: z.string().nullable(),
  /** Bytes of the checked-out files (blob sizes from the tree). */
  bytes: z.number().int().min(0),
  files: z.number().int().min(0),
  fetchedAt: z.iso.datetime({ offset: true }),
});
export type Manifest = z.infer<typeof ManifestSchema>;
