/**
 * Hot reload: watch the policy directory with chokidar and reload on any change, debounced and
 * serialised (never two loads at once; the newest change always wins). Only a fully loaded and
 * validated policy is handed over; a failed load is reported and the caller keeps the last good one.
 *
 * The directory is watched, not the files (depth 0, not recursive), so a file replaced by rename
 * (editors, config management, kubectl's `..data` symlink swap) is seen like any edit: every event
 * just schedules a reload of the whole directory. A directory that does not exist yet at start is
 * polled for until it appears; one removed later is reported (POLICY_NOT_FOUND, the last good
 * policy is kept), and the watch goes back to polling, since chokidar loses a removed directory.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { describeError, SignetError } from '../errors.js';
import { loadPolicyDir, type PolicyLoadError } from './load.js';
import type { Policy } from './types.js';

export interface PolicyWatcherHandlers {
  /** A new, fully validated policy whose generation differs from the last one handed over. */
  onPolicy(policy: Policy): void;
  /** A load failed (PolicyLoadError: file, line, message) or the watch itself failed; keep the last good policy. */
  onError(err: PolicyLoadError | SignetError): void;
}

export interface PolicyWatcherOptions {
  /** Quiet time after the last event before reloading; default 100 ms. */
  debounceMs?: number;
  /** How often to look for a policy directory that does not exist (yet); default 250 ms. */
  dirPollMs?: number;
  /** How to load the directory; loadPolicyDir unless set (tests slow it down to show serialisation). */
  load?: (dir: string) => Promise<Policy>;
}

export class PolicyWatcher {
  private readonly dir: string;
  private readonly debounceMs: number;
  private readonly dirPollMs: number;
  private readonly loadDir: (dir: string) => Promise<Policy>;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private dirPoll: NodeJS.Timeout | undefined;
  private loading: Promise<void> | undefined;
  private again = false;
  private generation: string | undefined;
  private closed = false;

  constructor(dir: string, private readonly handlers: PolicyWatcherHandlers, options: PolicyWatcherOptions = {}) {
    this.dir = resolve(dir);
    this.debounceMs = Math.min(options.debounceMs ?? 100, 200);
    this.dirPollMs = options.dirPollMs ?? 250;
    this.loadDir = options.load ?? loadPolicyDir;
  }

  /** Initial load, then watch (ready when this resolves). Resolves with the first policy, or undefined when it did not load. */
  async start(): Promise<Policy | undefined> {
    const first = await this.load();
    await this.watchDir();
    return first;
  }

  /** Reload now (SIGHUP); resolves when no reload is pending or running. */
  async reload(): Promise<void> {
    this.schedule(0);
    while (!this.closed && (this.loading || this.timer)) await (this.loading ?? new Promise((r) => setTimeout(r, 10)));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.stopDirPoll();
    const w = this.watcher;
    this.watcher = undefined;
    await w?.close();
    await this.loading;
  }

  private stopDirPoll(): void {
    if (this.dirPoll) clearInterval(this.dirPoll);
    this.dirPoll = undefined;
  }

  private async watchDir(): Promise<void> {
    if (this.closed || this.watcher || this.dirPoll) return;
    if (!existsSync(this.dir)) {
      // chokidar needs the directory; poll until it appears, then watch and load.
      this.dirPoll = setInterval(() => {
        if (this.closed || !existsSync(this.dir)) return;
        this.stopDirPoll();
        void this.watchDir().then(() => this.schedule(0));
      }, this.dirPollMs);
      this.dirPoll.unref();
      return;
    }
    const w = watch(this.dir, { depth: 0, ignoreInitial: true, persistent: true });
    this.watcher = w;
    w.on('all', () => this.schedule(this.debounceMs));
    w.on('error', (err) => {
      if (!this.closed) this.handlers.onError(new SignetError('POLICY_INVALID', `watching ${this.dir}: ${describeError(err)}`, { cause: err }));
    });
    await new Promise<void>((r) => w.once('ready', () => r()));
  }

  /** The directory went away: drop the watch and poll for it to come back. */
  private async rewatchWhenBack(): Promise<void> {
    const w = this.watcher;
    this.watcher = undefined;
    await w?.close();
    await this.watchDir();
  }

  private schedule(delay: number): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.loading) {
        // Serialised: run once more after the current load, which then sees the newest files.
        this.again = true;
        return;
      }
      this.loading = this.load()
        .then(() => undefined)
        .finally(() => {
          this.loading = undefined;
          if (this.again) {
            this.again = false;
            this.schedule(0);
          }
        });
    }, delay);
  }

  private async load(): Promise<Policy | undefined> {
    try {
      const policy = await this.loadDir(this.dir);
      if (this.closed) return undefined;
      if (policy.generation !== this.generation) {
        this.generation = policy.generation;
        this.handlers.onPolicy(policy);
      }
      return policy;
    } catch (err) {
      if (this.closed) return undefined;
      if (this.watcher && !existsSync(this.dir)) await this.rewatchWhenBack();
      this.handlers.onError(err instanceof SignetError ? err : new SignetError('POLICY_INVALID', describeError(err), { cause: err }));
      return undefined;
    }
  }
}
