/**
 * Admission control for decisions: at most `maxInFlight` run at once, at most `maxQueued` wait for a
 * slot (first come, first served), and a waiter gives up after `maxQueueWaitMs` or just before its
 * caller's own deadline. Everything beyond is refused at once with an Overloaded error, which the gRPC
 * layer turns into RESOURCE_EXHAUSTED: the caller fails closed with a clear reason instead of waiting
 * for a deadline, and the work that is admitted runs with its full time (its deadlines start when it
 * is admitted, not while it waits).
 */

export interface AdmissionOptions {
  maxInFlight: number;
  maxQueued: number;
  /** Longest wait for a slot. */
  maxQueueWaitMs: number;
  /**
   * Told each time a request leaves (done, refused or gone): `busy` when others still run or wait. For
   * idle-time housekeeping: a flood that was mostly refused still grew the heap.
   */
  onSettled?: (busy: boolean) => void;
}

export interface AdmissionStatus {
  inFlight: number;
  queued: number;
  maxInFlight: number;
  maxQueued: number;
  /** Work admitted since start. */
  admitted: number;
  /** Refused because the queue was full. */
  refusedQueueFull: number;
  /** Refused because no slot came free in time. */
  refusedQueueTimeout: number;
  /** Callers that went away while waiting. */
  abandoned: number;
  /** Most ever waiting at once. */
  peakQueued: number;
}

/** Refused for lack of capacity. `reason` is one line for the caller. */
export class Overloaded extends Error {
  constructor(
    readonly reason: 'queue-full' | 'queue-timeout',
    message: string,
  ) {
    super(message);
    this.name = 'Overloaded';
  }
}

/** The caller went away (cancelled, or its deadline passed) while waiting. */
export class Abandoned extends Error {
  constructor() {
    super('the caller went away while waiting for a decision slot');
    this.name = 'Abandoned';
  }
}

interface Waiter {
  start: () => void;
}

export class Admission {
  private inFlight = 0;
  /** Insertion-ordered: the first entry is the oldest waiter; deleting one that gave up is O(1). */
  private readonly waiting = new Map<number, Waiter>();
  private nextId = 0;
  private readonly counts = { admitted: 0, refusedQueueFull: 0, refusedQueueTimeout: 0, abandoned: 0, peakQueued: 0 };

  constructor(private readonly options: AdmissionOptions) {
    if (!(options.maxInFlight >= 1) || !(options.maxQueued >= 0) || !(options.maxQueueWaitMs >= 0))
      throw new RangeError('admission: maxInFlight ≥ 1, maxQueued ≥ 0, maxQueueWaitMs ≥ 0');
  }

  /**
   * Run `work` when a slot is free. `deadline` (epoch ms) is the caller's own deadline: waiting ends
   * shortly before it so the refusal reaches the caller in time. `signal` aborts the wait.
   */
  async run<T>(work: () => Promise<T>, options: { deadline?: number; signal?: AbortSignal } = {}): Promise<T> {
    if (this.inFlight >= this.options.maxInFlight || this.waiting.size > 0) {
      try {
        await this.wait(options);
      } catch (err) {
        this.options.onSettled?.(this.inFlight > 0 || this.waiting.size > 0);
        throw err;
      }
    } else this.inFlight++;
    this.counts.admitted++;
    try {
      return await work();
    } finally {
      this.release();
    }
  }

  /** Resolves holding a slot (inFlight already counted for us), or rejects with Overloaded/Abandoned. */
  private wait(options: { deadline?: number; signal?: AbortSignal }): Promise<void> {
    if (options.signal?.aborted) {
      this.counts.abandoned++;
      return Promise.reject(new Abandoned());
    }
    if (this.waiting.size >= this.options.maxQueued) {
      this.counts.refusedQueueFull++;
      return Promise.reject(
        new Overloaded(
          'queue-full',
          `signetd is overloaded: ${this.inFlight} decisions in progress and ${this.waiting.size} waiting (limits maxConcurrentDecisions ${this.options.maxInFlight}, maxQueuedDecisions ${this.options.maxQueued})`,
        ),
      );
    }
    const now = Date.now();
    // Give up a little before the caller's deadline, so that it hears why instead of timing out.
    const untilDeadline = options.deadline !== undefined && Number.isFinite(options.deadline) ? options.deadline - now - DEADLINE_MARGIN_MS : Infinity;
    const waitMs = Math.max(0, Math.min(this.options.maxQueueWaitMs, untilDeadline));
    return new Promise<void>((resolve, reject) => {
      const id = this.nextId++;
      const done = (): void => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        this.waiting.delete(id);
      };
      const timer = setTimeout(() => {
        done();
        this.counts.refusedQueueTimeout++;
        reject(
          new Overloaded(
            'queue-timeout',
            `signetd is overloaded: no decision slot came free within ${Math.round(waitMs)} ms (${this.inFlight} decisions in progress, ${this.waiting.size} waiting; limits maxConcurrentDecisions ${this.options.maxInFlight}, maxQueueWait ${this.options.maxQueueWaitMs} ms)`,
          ),
        );
      }, waitMs);
      const onAbort = (): void => {
        done();
        this.counts.abandoned++;
        reject(new Abandoned());
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.set(id, {
        start: () => {
          done();
          resolve();
        },
      });
      this.counts.peakQueued = Math.max(this.counts.peakQueued, this.waiting.size);
    });
  }

  /** Hand the slot to the oldest waiter, or free it. */
  private release(): void {
    const next = this.waiting.values().next();
    if (!next.done)
      next.value.start(); // the slot passes on: inFlight unchanged
    else this.inFlight--;
    this.options.onSettled?.(this.inFlight > 0 || this.waiting.size > 0);
  }

  status(): AdmissionStatus {
    return { inFlight: this.inFlight, queued: this.waiting.size, maxInFlight: this.options.maxInFlight, maxQueued: this.options.maxQueued, ...this.counts };
  }
}

/** How long before the caller's deadline a waiter gives up, so the refusal still reaches it. */
export const DEADLINE_MARGIN_MS = 100;
