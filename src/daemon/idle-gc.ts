/**
 * Give memory back after a burst. Under load V8 grows its heap well beyond what is alive (garbage
 * promoted while hundreds of decisions are in flight) and, left alone, keeps it: a node that once took a
 * burst of pulls would hold hundreds of MB for good. When signetd falls idle after enough work and the
 * heap holds much more than is alive, one full collection returns it (a few tens of milliseconds, only
 * while nothing is being decided).
 *
 * V8's `gc()` is reached through `--expose-gc` set at run time; where that is not possible this does
 * nothing.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface IdleCompactorOptions {
  /** Quiet time before collecting. */
  idleMs: number;
  /** Pieces of work since the last collection before one is worth it. */
  minWork: number;
  /** Heap committed beyond what is in use, below which there is nothing worth giving back. */
  minSlackBytes: number;
}

export const DEFAULT_IDLE_COMPACTION: IdleCompactorOptions = { idleMs: 2000, minWork: 500, minSlackBytes: 32 * 1024 * 1024 };

let collect: (() => void) | null | undefined;
function fullCollection(): boolean {
  if (collect === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as () => void;
      if (typeof collect !== 'function') collect = null;
    } catch {
      collect = null;
    }
  }
  if (collect === null) return false;
  collect();
  return true;
}

export class IdleCompactor {
  private work = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Collections done (for status and tests). */
  collections = 0;

  constructor(private readonly options: IdleCompactorOptions = DEFAULT_IDLE_COMPACTION) {}

  /** A piece of work ended; `busy` when more is still running or waiting. */
  ended(busy: boolean): void {
    this.work++;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (busy || this.work < this.options.minWork) return;
    this.timer = setTimeout(() => this.compact(), this.options.idleMs);
    this.timer.unref();
  }

  private compact(): void {
    this.timer = undefined;
    const m = process.memoryUsage();
    if (m.heapTotal - m.heapUsed < this.options.minSlackBytes) return;
    if (fullCollection()) {
      this.collections++;
      this.work = 0;
    }
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
