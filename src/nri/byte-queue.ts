/**
 * Bytes received from a stream socket, kept as the chunks they arrived in until a whole frame is
 * there: the mux and the ttrpc reader both read fixed headers and length-prefixed bodies from it.
 */
export class ByteQueue {
  private chunks: Buffer[] = [];
  private held = 0;

  /** Bytes held. */
  get length(): number {
    return this.held;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.held += chunk.length;
  }

  /** The first `n` bytes (n ≤ length), without removing them; a view, valid until the next change. */
  peek(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    if (this.chunks[0]!.length >= n) return this.chunks[0]!.subarray(0, n);
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined.subarray(0, n);
  }

  /** Remove and return a copy of the first `n` bytes (n ≤ length). */
  take(n: number): Buffer {
    const copy = Buffer.from(this.peek(n));
    this.drop(n);
    return copy;
  }

  /** Remove the first `n` bytes (n ≤ length). */
  drop(n: number): void {
    this.held -= n;
    while (n > 0) {
      const first = this.chunks[0]!;
      if (first.length <= n) {
        n -= first.length;
        this.chunks.shift();
      } else {
        this.chunks[0] = first.subarray(n);
        n = 0;
      }
    }
  }
}
