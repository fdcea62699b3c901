/**
 * Hot reload: watch the policy directory with chokidar and reload on any change, debounced and
 * serialised (never two loads at once; the newest change always wins). Only a fully loaded and
 * validated policy is handed over; a failed load is reported and the caller keeps the last good one.
 *
 * The directory is watched, not the files (depth 0, not recursive), so a file replaced by rename
 * (editors, config management, kubectl's `..data` symlink swap) is seen like any edit: every event
 * just schedules a reload of the whole directory.
 *
 * The watch itself is supervised, because a watch is bound to the directory it was opened on and
 * dies quietly when that directory goes away:
 * - the directory's identity (device, inode, birth time) is recorded when the watch is opened, and checked
 *   after every load, on every event about the directory itself, on reload() and on every rescan;
 *   a different directory under the same path (`mv policy.new policy.d`, `rm -rf` + `mkdir`, a
 *   swapped symlink) gets a new watch and a load;
 * - the parent directory is watched for the policy directory's own name, so such a swap is seen at
 *   once rather than at the next rescan;
 * - a directory that is missing, not a directory or not readable (chmod 000) is reported by the load
 *   that finds it so, its watch is dropped (chokidar gives up on it anyway) and it is polled for every
 *   `dirPollMs` until it is usable again, then watched and loaded;
 * - reload() (SIGHUP) always opens a new watch before loading;
 * - every `rescanMs` (the safety net for anything no event reports) the watch is checked and the
 *   directory loaded; an unchanged directory is not handed over again, and an unchanged failure is
 *   not reported again.
 */
import { constants, watch as watchFs, type FSWatcher as NodeFsWatcher } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { describeError, SignetError } from '../errors.js';
import { loadPolicyDir, type PolicyLoadError } from './load.js';
import type { Policy } from './types.js';

export interface PolicyWatcherHandlers {
  /** A new, fully validated policy whose generation differs from the last one handed over. */
  onPolicy(policy: Policy): void;
  /** A load failed (PolicyLoadError: file, line, message) or the watch itself failed; keep the last good policy. */
  onError(err: PolicyLoadError | SignetError): void;
  /**
   * A load succeeded after failures, and gave the policy already in force (the broken file was
   * removed, the directory is readable again): whatever onError reported is over.
   */
  onRecovered?(policy: Policy): void;
}

export interface PolicyWatcherOptions {
  /** Quiet time after the last event before reloading; default 100 ms. */
  debounceMs?: number;
  /** How often to look for a policy directory that is missing or unreadable; default 250 ms. */
  dirPollMs?: number;
  /** Check the watch and load the directory this often, events or not; default 30 s, 0 turns it off. */
  rescanMs?: number;
  /** How to load the directory; loadPolicyDir unless set (tests slow it down to show serialisation). */
  load?: (dir: string) => Promise<Policy>;
}

export const DEFAULT_POLICY_RESCAN_MS = 30_000;

type Trigger = 'event' | 'rescan' | 'reload';

export class PolicyWatcher {
  private readonly dir: string;
  private readonly debounceMs: number;
  private readonly dirPollMs: number;
  private readonly rescanMs: number;
  private readonly loadDir: (dir: string) => Promise<Policy>;
  private watcher: FSWatcher | undefined;
  /** Identity (device, inode, birth time) of the directory the chokidar watch was opened on. */
  private watchedId: string | undefined;
  /** chokidar reported the directory itself gone: the watch is dead even if the path is back. */
  private watchBroken = false;
  private parentWatch: NodeFsWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private dirPoll: NodeJS.Timeout | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private loading: Promise<void> | undefined;
  private again = false;
  /** Triggers of the load that is scheduled or waiting to run again. */
  private pending = new Set<Trigger>();
  /** Serialises changes to the watch. */
  private watchOp: Promise<void> = Promise.resolve();
  private generation: string | undefined;
  /** The last failure reported, so that a rescan finding the same one does not report it again. */
  private lastError: string | undefined;
  private closed = false;

  constructor(
    dir: string,
    private readonly handlers: PolicyWatcherHandlers,
    options: PolicyWatcherOptions = {},
  ) {
    this.dir = resolve(dir);
    this.debounceMs = Math.min(options.debounceMs ?? 100, 200);
    this.dirPollMs = options.dirPollMs ?? 250;
    this.rescanMs = options.rescanMs ?? DEFAULT_POLICY_RESCAN_MS;
    this.loadDir = options.load ?? loadPolicyDir;
  }

  /** Watch, then the initial load (ready when this resolves). Resolves with the first policy, or undefined when it did not load. */
  async start(): Promise<Policy | undefined> {
    // Watch first: a change made while the first load reads the files is then not missed.
    await this.ensureWatch({ loadAfterRewatch: false });
    const first = await this.load('event');
    if (this.rescanMs > 0 && !this.closed) {
      this.rescanTimer = setInterval(() => {
        void this.ensureWatch();
        this.schedule(0, 'rescan');
      }, this.rescanMs);
      this.rescanTimer.unref();
    }
    return first;
  }

  /** Reload now (SIGHUP): a new watch, then a load; resolves when no reload is pending or running. */
  async reload(): Promise<void> {
    await this.ensureWatch({ force: true, loadAfterRewatch: false });
    this.schedule(0, 'reload');
    while (!this.closed && (this.loading || this.timer)) await (this.loading ?? new Promise((r) => setTimeout(r, 10)));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    this.rescanTimer = undefined;
    this.stopDirPoll();
    await this.watchOp;
    await this.unwatch();
    await this.loading;
  }

  /**
   * Make sure a live watch is open on the directory now at the path: open one when there is none,
   * when the directory changed (or `force`), poll when it is not usable. After a new watch on a
   * different directory the directory is loaded, since its changes were not seen.
   */
  private ensureWatch(options: { force?: boolean; loadAfterRewatch?: boolean } = {}): Promise<void> {
    const run = async () => {
      if (this.closed) return;
      this.ensureParentWatch();
      const id = await usableDirId(this.dir);
      if (this.closed) return;
      if (id === undefined) {
        await this.unwatch();
        this.startDirPoll();
        return;
      }
      if (!options.force && this.watcher && !this.watchBroken && id === this.watchedId) return;
      const changed = id !== this.watchedId || this.watchBroken;
      await this.unwatch();
      this.stopDirPoll();
      await this.watchDir(id);
      if (changed && options.loadAfterRewatch !== false) this.schedule(0, 'event');
    };
    this.watchOp = this.watchOp.then(run).catch((err: unknown) => {
      if (!this.closed) this.handlers.onError(new SignetError('POLICY_INVALID', `watching ${this.dir}: ${describeError(err)}`, { cause: err }));
    });
    return this.watchOp;
  }

  private async watchDir(id: string): Promise<void> {
    const w = watch(this.dir, { depth: 0, ignoreInitial: true, persistent: true });
    this.watcher = w;
    this.watchedId = id;
    this.watchBroken = false;
    w.on('all', (event, path) => {
      if (w !== this.watcher) return;
      if (resolve(path) === this.dir && (event === 'unlinkDir' || event === 'unlink')) {
        // chokidar stops following a directory it believes removed (it also says so for chmod 000).
        this.watchBroken = true;
        void this.ensureWatch();
      }
      this.schedule(this.debounceMs, 'event');
    });
    w.on('error', (err) => {
      if (w !== this.watcher || this.closed) return;
      this.handlers.onError(new SignetError('POLICY_INVALID', `watching ${this.dir}: ${describeError(err)}`, { cause: err }));
      this.watchBroken = true;
      void this.ensureWatch();
    });
    await new Promise<void>((r) => {
      w.once('ready', () => r());
      w.once('error', () => r());
    });
  }

  private async unwatch(): Promise<void> {
    const w = this.watcher;
    this.watcher = undefined;
    this.watchedId = undefined;
    this.watchBroken = false;
    await w?.close().catch(() => undefined);
    if (this.closed) {
      this.parentWatch?.close();
      this.parentWatch = undefined;
    }
  }

  /** The parent directory, for renames of the policy directory itself (best effort: the rescan covers the rest). */
  private ensureParentWatch(): void {
    if (this.parentWatch || this.closed) return;
    const name = basename(this.dir);
    try {
      const pw = watchFs(dirname(this.dir), { persistent: false }, (event, filename) => {
        if (filename !== null && filename.toString() !== name) return;
        // A rename event: the name was removed, created or moved onto; whatever is there now gets a new watch.
        void this.ensureWatch({ force: event === 'rename' });
        this.schedule(this.debounceMs, 'event');
      });
      pw.on('error', () => {
        pw.close();
        if (this.parentWatch === pw) this.parentWatch = undefined;
      });
      this.parentWatch = pw;
    } catch {
      // No parent to watch (yet): the directory poll and the rescan still find changes.
    }
  }

  private startDirPoll(): void {
    if (this.dirPoll || this.closed) return;
    let checking = false;
    this.dirPoll = setInterval(() => {
      if (checking || this.closed) return;
      checking = true;
      void usableDirId(this.dir)
        .then((id) => {
          if (id === undefined || this.closed) return;
          this.stopDirPoll();
          return this.ensureWatch();
        })
        .finally(() => {
          checking = false;
        });
    }, this.dirPollMs);
    this.dirPoll.unref();
  }

  private stopDirPoll(): void {
    if (this.dirPoll) clearInterval(this.dirPoll);
    this.dirPoll = undefined;
  }

  private schedule(delay: number, trigger: Trigger): void {
    if (this.closed) return;
    this.pending.add(trigger);
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.loading) {
        // Serialised: run once more after the current load, which then sees the newest files.
        this.again = true;
        return;
      }
      const triggers = this.pending;
      this.pending = new Set();
      this.loading = this.load(triggers.has('reload') ? 'reload' : triggers.has('event') ? 'event' : 'rescan')
        .then(() => undefined)
        .finally(() => {
          this.loading = undefined;
          if (this.again) {
            this.again = false;
            this.schedule(0, this.pending.has('reload') ? 'reload' : 'event');
          }
        });
    }, delay);
  }

  private async load(trigger: Trigger): Promise<Policy | undefined> {
    let policy: Policy;
    try {
      policy = await this.loadDir(this.dir);
    } catch (err) {
      if (this.closed) return undefined;
      const e = err instanceof SignetError ? err : new SignetError('POLICY_INVALID', describeError(err), { cause: err });
      // A directory that cannot be read is polled for; one that can may still need a new watch.
      await this.ensureWatch();
      const repeated = e.message === this.lastError;
      this.lastError = e.message;
      if (!(repeated && trigger === 'rescan')) this.handlers.onError(e);
      return undefined;
    }
    if (this.closed) return undefined;
    await this.ensureWatch();
    const recovered = this.lastError !== undefined;
    this.lastError = undefined;
    if (policy.generation !== this.generation) {
      this.generation = policy.generation;
      this.handlers.onPolicy(policy);
    } else if (recovered) {
      this.handlers.onRecovered?.(policy);
    }
    return policy;
  }
}

/**
 * The identity of the directory at `dir` when it is a directory this process can list, else undefined:
 * device, inode and birth time (an inode number is often reused at once by `rm -rf d; mkdir d`).
 */
async function usableDirId(dir: string): Promise<string | undefined> {
  try {
    const s = await stat(dir, { bigint: true });
    if (!s.isDirectory()) return undefined;
    await access(dir, constants.R_OK | constants.X_OK);
    return `${s.dev}:${s.ino}:${s.birthtimeNs}`;
  } catch {
    return undefined;
  }
}
