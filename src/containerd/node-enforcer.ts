/**
 * signetd's watch over the images containerd holds, whatever path they took (a pull the verifier
 * never saw: `ctr image pull --local`, `ctr image import`, nerdctl, CRI's local pull fallback, or
 * containerd 1.6/1.7, which have no verifier at all):
 * - every /images/create and /images/update event is decided with the same engine (`image-event`);
 * - every image of every watched namespace is decided again after each policy or key change, every
 *   `reverifyInterval`, and whenever the event stream (re)connects (`reverify`).
 * A refused image is reported (audit line, counters, `signet status`) and, with `onUnverified:
 * remove`, its record is deleted from containerd. After the fact and best effort: containerd has
 * already stored the image when the event arrives.
 *
 * Removal follows definitive verdicts only: an image that could not be checked (registry down, key
 * unavailable, no policy loaded) is kept and reported, so an outage never empties a node.
 */
import type { Logger } from '../daemon/logger.js';
import { describeError, type ErrorCode } from '../errors.js';
import type { Decision, VerifyRequest } from '../engine/decision.js';
import type { ContainerdClient, ContainerdImage, EventSubscription } from './client.js';
import type { ContainerdEvent } from './events.js';
import { decideGroup, groupByTarget, isImageId, mapLimit, type ImageVerdict } from './image-verdicts.js';
import { couldNotCheck } from '../errors.js';

export type OnUnverified = 'report' | 'remove';
export type ImageAuditEvent = 'image-event' | 'reverify';
/** What was done about a record: nothing (accepted), reported, removed, kept (could not be checked). */
export type ImageAction = 'none' | 'reported' | 'removed' | 'kept';

export interface NodeEnforcerOptions {
  /** Namespaces to watch; undefined: all. */
  namespaces?: string[];
  onUnverified: OnUnverified;
  reverifyIntervalMs: number;
  /** Events of one pull (tag, digest and ID records) arrive together: decide them once, after this. */
  settleMs?: number;
  /** Decisions at a time during a sweep. */
  concurrency?: number;
}

export interface NodeEnforcerDeps {
  client: ContainerdClient;
  decide: (request: VerifyRequest) => Promise<Decision>;
  /** True once a policy is loaded: before that, nothing is decided (every answer would be "no policy"). */
  ready: () => boolean;
  policyGeneration: () => string;
  record: (verdict: ImageVerdict, event: ImageAuditEvent, action: ImageAction) => void;
  log: Logger;
}

export interface NodeEnforcerStatus {
  address: string;
  connected: boolean;
  version: string;
  lastError: string;
  onUnverified: OnUnverified;
  imageEvents: number;
  imageEventsRefused: number;
  imagesRemoved: number;
  lastReverify: string;
  lastReverifyTrigger: string;
  lastReverifyImages: number;
  lastReverifyRefused: number;
  /** Reverification passes completed since start (metrics). */
  reverifications: number;
  /** Refused records still on the node, `namespace/name`, as last decided. */
  refusedImages: string[];
}

/** Refusals that say "could not check", not "not allowed": never a reason to delete. */
export function isUndecided(decision: Decision): boolean {
  return couldNotCheck(decision);
}

const IMAGE_TOPICS = ['topic=="/images/create"', 'topic=="/images/update"'];
const MAX_BACKOFF_MS = 30_000;

export class NodeImageEnforcer {
  private subscription: EventSubscription | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private intervalTimer: NodeJS.Timeout | undefined;
  private backoffMs = 1000;
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private sweeping: Promise<void> | undefined;
  private sweepAgain: string | undefined;
  private readonly refused = new Map<string, string>();
  private readonly state = {
    connected: false,
    version: '',
    lastError: '',
    imageEvents: 0,
    imageEventsRefused: 0,
    imagesRemoved: 0,
    lastReverify: '',
    lastReverifyTrigger: '',
    lastReverifyImages: 0,
    lastReverifyRefused: 0,
    reverifications: 0,
  };
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly options: NodeEnforcerOptions,
    private readonly deps: NodeEnforcerDeps,
  ) {}

  start(): void {
    this.connect();
    this.intervalTimer = setInterval(() => void this.reverify('interval'), this.options.reverifyIntervalMs);
    this.intervalTimer.unref();
  }

  status(): NodeEnforcerStatus {
    return { address: this.deps.client.address, onUnverified: this.options.onUnverified, ...this.state, refusedImages: [...this.refused.keys()].sort() };
  }

  /** Connect, subscribe, then sweep (images may have arrived while we were not listening). */
  private connect(): void {
    if (this.stopped) return;
    const attempt = (async () => {
      const { version } = await this.deps.client.version();
      if (this.stopped) return;
      this.subscription = this.deps.client.subscribe(
        IMAGE_TOPICS,
        (e) => this.onEvent(e),
        (err) => this.onStreamEnd(err),
      );
      const first = this.state.version === '' && this.state.lastError === '';
      Object.assign(this.state, { connected: true, version, lastError: '' });
      this.backoffMs = 1000;
      this.deps.log.info('watching containerd image events', {
        address: this.deps.client.address,
        containerdVersion: version,
        namespaces: this.options.namespaces ?? 'all',
        onUnverified: this.options.onUnverified,
      });
      await this.reverify(first ? 'start' : 'reconnect');
    })();
    this.track(attempt.catch((err: unknown) => this.retry(err)));
  }

  private onStreamEnd(err?: Error): void {
    this.state.connected = false;
    this.subscription = undefined;
    if (this.stopped) return;
    this.retry(err ?? new Error('containerd closed the event stream'));
  }

  private retry(err: unknown): void {
    if (this.stopped) return;
    const message = describeError(err);
    // Log once per distinct error, not at every retry.
    if (message !== this.state.lastError)
      this.deps.log.warn('containerd not reachable: images that arrive meanwhile are decided when it is back', {
        address: this.deps.client.address,
        error: message,
        retryInMs: this.backoffMs,
      });
    Object.assign(this.state, { connected: false, lastError: message });
    this.retryTimer = setTimeout(() => this.connect(), this.backoffMs);
    this.retryTimer.unref();
    this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
  }

  private watches(namespace: string): boolean {
    return this.options.namespaces === undefined || this.options.namespaces.includes(namespace);
  }

  private onEvent(event: ContainerdEvent): void {
    if (event.imageName === undefined || !this.watches(event.namespace)) return;
    const name = event.imageName;
    // Coalesce the records of one pull: decide the image once they have all arrived.
    const work = this.deps.client.getImage(event.namespace, name).then((image) => {
      if (!image) return;
      const key = `${image.namespace}\u0000${image.target.digest}`;
      clearTimeout(this.pending.get(key));
      const timer = setTimeout(() => {
        this.pending.delete(key);
        this.track(
          this.decideImage(image).catch((err: unknown) =>
            this.deps.log.error('cannot decide an image event', { namespace: image.namespace, image: name, error: describeError(err) }),
          ),
        );
      }, this.options.settleMs ?? 250);
      this.pending.set(key, timer);
    });
    this.track(
      work.catch((err: unknown) => this.deps.log.error('cannot read an image record', { namespace: event.namespace, image: name, error: describeError(err) })),
    );
  }

  private async decideImage(image: ContainerdImage): Promise<void> {
    if (!this.deps.ready()) {
      this.deps.log.warn('image arrived while no policy is loaded; decided at the next reverification', { namespace: image.namespace, image: image.name });
      return;
    }
    const group = await this.deps.client.listImages(image.namespace, [`target.digest==${image.target.digest}`]);
    const verdicts = await decideGroup(group, this.deps.decide, this.deps.policyGeneration);
    for (const v of verdicts) {
      this.state.imageEvents++;
      if (!v.decision.ok) this.state.imageEventsRefused++;
    }
    await this.enforce(verdicts, 'image-event');
  }

  /**
   * Decide every image of the watched namespaces again. Sweeps never overlap: a request during a
   * sweep runs once more after it.
   */
  reverify(trigger: string): Promise<void> {
    if (this.stopped || !this.state.connected) return Promise.resolve();
    if (this.sweeping) {
      this.sweepAgain = trigger;
      return this.sweeping;
    }
    this.sweeping = this.sweep(trigger)
      .catch((err: unknown) => {
        this.deps.log.error('reverification failed', { trigger, error: describeError(err) });
      })
      .finally(() => {
        this.sweeping = undefined;
        const again = this.sweepAgain;
        this.sweepAgain = undefined;
        if (again !== undefined) void this.reverify(again);
      });
    this.track(this.sweeping);
    return this.sweeping;
  }

  private async sweep(trigger: string): Promise<void> {
    if (!this.deps.ready()) return;
    const namespaces = (await this.deps.client.namespaces()).filter((ns) => this.watches(ns));
    const images = (await Promise.all(namespaces.map((ns) => this.deps.client.listImages(ns)))).flat();
    const groups = groupByTarget(images);
    const verdicts = (await mapLimit(groups, this.options.concurrency ?? 4, (g) => decideGroup(g, this.deps.decide, this.deps.policyGeneration))).flat();
    const present = new Set(images.map((i) => `${i.namespace}/${i.name}`));
    for (const key of this.refused.keys()) if (!present.has(key)) this.refused.delete(key);
    await this.enforce(verdicts, 'reverify');
    const refused = verdicts.filter((v) => !v.decision.ok).length;
    Object.assign(this.state, {
      lastReverify: new Date().toISOString(),
      lastReverifyTrigger: trigger,
      lastReverifyImages: verdicts.length,
      lastReverifyRefused: refused,
      reverifications: this.state.reverifications + 1,
    });
    this.deps.log.info('reverified the images on the node', { trigger, images: verdicts.length, refused, namespaces });
  }

  /** Audit each verdict and act on refusals as configured. */
  private async enforce(verdicts: ImageVerdict[], event: ImageAuditEvent): Promise<void> {
    const removedNames = new Set<string>();
    // Named records first: an ID is removed only when every name of its image was.
    const ordered = [...verdicts.filter((v) => !isImageId(v.image.name)), ...verdicts.filter((v) => isImageId(v.image.name))];
    for (const v of ordered) {
      const key = `${v.image.namespace}/${v.image.name}`;
      let action: ImageAction = 'none';
      if (v.decision.ok) {
        this.refused.delete(key);
      } else if (isUndecided(v.decision)) {
        action = 'kept';
        this.refused.set(key, v.decision.reason);
      } else if (this.options.onUnverified === 'remove' && this.mayRemove(v, verdicts, removedNames)) {
        action = (await this.remove(v.image)) ? 'removed' : 'reported';
        if (action === 'removed') {
          removedNames.add(key);
          this.refused.delete(key);
          this.state.imagesRemoved++;
        } else {
          this.refused.set(key, v.decision.reason);
        }
      } else {
        action = 'reported';
        this.refused.set(key, v.decision.reason);
      }
      this.deps.record(v, event, action);
    }
  }

  private mayRemove(v: ImageVerdict, all: ImageVerdict[], removedNames: Set<string>): boolean {
    if (!isImageId(v.image.name)) return true;
    const siblings = all.filter((x) => x.image.namespace === v.image.namespace && x.image.target.digest === v.image.target.digest && !isImageId(x.image.name));
    return siblings.every((s) => removedNames.has(`${s.image.namespace}/${s.image.name}`));
  }

  private async remove(image: ContainerdImage): Promise<boolean> {
    try {
      const removed = await this.deps.client.deleteImage(image.namespace, image.name, image.target);
      if (removed) this.deps.log.warn('removed an image the policy refuses', { namespace: image.namespace, image: image.name, digest: image.target.digest });
      return removed;
    } catch (err) {
      this.deps.log.error('cannot remove a refused image', { namespace: image.namespace, image: image.name, error: describeError(err) });
      return false;
    }
  }

  private track<T>(p: Promise<T>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.intervalTimer);
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
    this.subscription?.close();
    await Promise.allSettled([...this.inFlight]);
    this.deps.client.close();
  }
}
