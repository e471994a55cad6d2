import { createHash } from 'node:crypto';

const EXCERPT_CHARS = 16 * 1024;
// Head and tail each, leaving room for the marker between them.
const HALF = (EXCERPT_CHARS - 128) / 2;

/**
 * Digest, size and a bounded excerpt (head and tail) of a stream of log output, computed as the
 * output passes, so the digest describes what the prover printed, not a file that could be changed.
 */
export class LogDigest {
  private readonly hash = createHash('sha256');
  private bytes = 0;
  /** Everything so far, while it fits the excerpt. */
  private whole: Buffer | undefined = Buffer.alloc(0);
  private head = Buffer.alloc(0);
  private tail = Buffer.alloc(0);

  update(chunk: Buffer): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    if (this.whole) {
      const next = Buffer.concat([this.whole, chunk]);
      if (next.length <= EXCERPT_CHARS - 128) {
        this.whole = next;
        return;
      }
      this.whole = undefined;
      this.head = next.subarray(0, HALF);
      this.tail = next.subarray(-HALF);
      return;
    }
    this.tail = Buffer.concat([this.tail, chunk]).subarray(-HALF);
  }

  summary(): { digest: string; bytes: number; excerpt: string; truncated: boolean } {
    const digest = `sha256:${this.hash.copy().digest('hex')}`;
    if (this.whole) return { digest, bytes: this.bytes, excerpt: text(this.whole), truncated: false };
    const left = this.bytes - this.head.length - this.tail.length;
    const excerpt = `${text(this.head)}\n… [${left} bytes left out] …\n${text(this.tail)}`;
    return { digest, bytes: this.bytes, excerpt, truncated: true };
  }
}

/**
 * Log bytes as text the evidence can carry: invalid UTF-8 becomes U+FFFD already, and so does a NUL,
 * which proof output can contain and which neither the API nor Postgres takes in a string (the
 * upload would be refused and the attempt end without evidence). The digest is of the bytes as they were.
 */
function text(bytes: Buffer): string {
  return bytes.toString('utf8').replace(/\u0000/g, '\uFFFD');
}
