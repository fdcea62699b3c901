/**
 * Hot reload: watch the policy directory with chokidar and reload on any change, debounced and
 * serialised (never two loads at once; the newest change always wins). Only a fully loaded and
 * validated policy is handed over; a failed load is reported and the caller keeps the last good one.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { describeError, SignetError } from '../errors.js';
import { loadPolicyDir } from './load.js';
import type { Policy } from './types.js';

export interface PolicyWatcherHandlers {
  onPolicy(policy: Policy): void;
  onError(err: SignetError): void;
}

const DEBOUNCE_MS = 100;
/** How often to look for a policy directory that does not exist yet. */
const DIR_POLL_MS = 1000;

export class PolicyWatcher {
  private readonly dir: string;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private dirPoll: NodeJS.Timeout | undefined;
  private loading: Promise<void> | undefined;
  private again = false;
  private generation: string | undefined;
  private closed = false;

  constructor(dir: string, private readonly handlers: PolicyWatcherHandlers) {
    this.dir = resolve(dir);
  }

  /** Initial load, then watch. Resolves with the first policy, or undefined when it did not load. */
  async start(): Promise<Policy | undefined> {
    const first = await this.load();
    this.watchDir();
    return first;
  }

  /** Reload now (SIGHUP). */
  async reload(): Promise<void> {
    this.schedule(0);
    while (this.loading || this.timer) await (this.loading ?? new Promise((r) => setTimeout(r, DEBOUNCE_MS)));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.dirPoll) clearInterval(this.dirPoll);
    await this.watcher?.close();
    await this.loading;
  }

  private watchDir(): void {
    if (!existsSync(this.dir)) {
      // chokidar needs the directory; poll until it appears, then watch and load.
      this.dirPoll = setInterval(() => {
        if (existsSync(this.dir)) {
          clearInterval(this.dirPoll);
          this.dirPoll = undefined;
          this.watchDir();
          this.schedule(0);
        }
      }, DIR_POLL_MS);
      this.dirPoll.unref();
      return;
    }
    this.watcher = watch(this.dir, { depth: 0, ignoreInitial: true, persistent: true });
    this.watcher.on('all', () => this.schedule(DEBOUNCE_MS));
    this.watcher.on('error', (err) => this.handlers.onError(new SignetError('POLICY_INVALID', `watching ${this.dir}: ${describeError(err)}`)));
  }

  private schedule(delay: number): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.loading) {
        this.again = true;
        return;
      }
      this.loading = this.load().then(() => undefined).finally(() => {
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
      const policy = await loadPolicyDir(this.dir);
      if (policy.generation !== this.generation) {
        this.generation = policy.generation;
        this.handlers.onPolicy(policy);
      }
      return policy;
    } catch (err) {
      this.handlers.onError(err instanceof SignetError ? err : new SignetError('POLICY_INVALID', describeError(err)));
      return undefined;
    }
  }
}
