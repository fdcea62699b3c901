/**
 * The audit trail: one JSON object per decision, one line each, appended to a file.
 * Lines carry everything needed to answer "why was this pulled?" later without the daemon.
 *
 * Written synchronously, so that the caller knows whether its record is on disk before it answers:
 * with `auditFailure: reject` a decision that cannot be recorded is refused. A failure (full disk,
 * read-only or vanished file) starts an episode: logged once, counted, shown in Status and Health;
 * the file is reopened at most once a second until a write succeeds again. The path is watched
 * for rotation (renamed or deleted and recreated, as logrotate's `create` does) and reopened on
 * SIGHUP, so records always go to the file the operator sees at that path.
 */
import { closeSync, fstatSync, mkdirSync, openSync, statSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import type { Decision } from '../engine/decision.js';
import { LIMITS, printable, printableJson } from '../util/printable.js';
import { printableBase, printableDecision } from '../util/printable-decision.js';

/**
 * `decision`: a question asked through the API (a pull through containerd's verifier, `signet`);
 * `image-event`: an image that arrived in containerd by any path, seen in its event stream;
 * `reverify`: an image already on the node, decided again (policy or key change, interval, restart);
 * `create`: a container (or pod sandbox) about to be created from the image, asked through NRI.
 */
export type AuditEvent = 'decision' | 'image-event' | 'reverify' | 'create';

/** Where an image-event or reverify decision came from, and what was done about it. */
export interface NodeContext {
  event: 'image-event' | 'reverify';
  namespace: string;
  /** none (accepted), reported, removed (record deleted from containerd), kept (could not be checked). */
  action: string;
}

/** A creation decision (NRI): which pod and container, which of their images, what was done. */
export interface CreateContext {
  event: 'create';
  /** The pod's Kubernetes namespace. */
  namespace: string;
  pod: string;
  /** Empty for a pod sandbox decided at RunPodSandbox. */
  container: string;
  /** `container` (the container's image) or `sandbox` (its pod sandbox's image). */
  role: string;
  /** allowed | refused */
  action: string;
  /** The verdict came from memory (same name, digest and policy generation). */
  cached: boolean;
  /** A code for refusals the engine does not make (IMAGE_NOT_FOUND, DECISION_TIMEOUT, …). */
  code?: string;
}

export interface AuditRecord {
  event: AuditEvent;
  /** The node that decided (os.hostname()), so lines shipped off the node still say where. */
  host: string;
  namespace?: string;
  action?: string;
  pod?: string;
  container?: string;
  role?: string;
  cached?: boolean;
  name: string;
  image: string;
  digest: string;
  mediaType: string;
  scope: string;
  decision: Decision['decision'];
  reason: string;
  code?: string;
  signatures: Decision['signatures'];
  warnings: string[];
  policyGeneration: string;
  durationMs: number;
}

export interface AuditHealth {
  path: string;
  /** False during a failure episode: records are being lost. */
  writable: boolean;
  /** Records that could not be written, since start. */
  failures: number;
  /** Records written since start. */
  written: number;
  lastError: string;
  /** Start of the current failure episode (RFC 3339), or ''. */
  failingSince: string;
}

export interface AuditLogger {
  error(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
}

/** The node's name, read once: every line carries it. */
const HOST = printable(hostname(), LIMITS.name);
const HOST_JSON = printableJson(HOST);

/** How often a failed or possibly rotated file is looked at again. */
const RECHECK_MS = 1000;

export class AuditLog {
  private fd: number | undefined;
  private openedIno: number | undefined;
  private lastCheck = 0;
  private readonly state = { failures: 0, written: 0, lastError: '', failingSince: '' };
  private readonly listeners = new Set<(writable: boolean) => void>();

  /** `path` is a file path, or `-` for standard output. */
  constructor(
    private readonly path: string,
    private readonly log?: AuditLogger,
  ) {
    if (path !== '-') this.open();
  }

  /** Append one record; false when it could not be written (the episode is logged once). */
  record(untrustedDecision: Decision, node?: NodeContext | CreateContext): boolean {
    // Names, reasons and sources carry untrusted text: escaped and bounded, so one line stays one short line.
    const decision = printableDecision(untrustedDecision);
    if (node === undefined) return this.write(Buffer.from(decisionLine(decision)));
    const create = node.event === 'create' ? node : undefined;
    const code = create?.code ?? decision.code;
    // `time` first; `level` and `message` as the lines have always carried them. Built as one object, in
    // line order: this runs for every decision, cached answers included.
    const record: AuditRecord & { time: string; level: 'info'; message: string } = {
      time: new Date().toISOString(),
      event: node?.event ?? 'decision',
      host: HOST,
      ...(node ? { namespace: printable(node.namespace, LIMITS.name), action: node.action } : {}),
      ...(create ? { pod: printable(create.pod, LIMITS.name), container: printable(create.container, LIMITS.name), role: create.role } : {}),
      // Every line says whether the verdict came from signetd's verdict cache.
      cached: create?.cached ?? decision.cached === true,
      name: decision.name,
      image: decision.image,
      digest: decision.digest,
      mediaType: decision.mediaType,
      scope: decision.scope,
      decision: decision.decision,
      reason: decision.reason,
      ...(code !== undefined ? { code } : {}),
      signatures: decision.signatures,
      warnings: decision.warnings,
      policyGeneration: decision.policyGeneration,
      durationMs: decision.durationMs,
      level: 'info',
      message: decision.decision,
    };
    const line = `${printableJson(record)}\n`;
    return this.write(Buffer.from(line));
  }

  health(): AuditHealth {
    return { path: this.path, writable: this.state.failingSince === '', ...this.state };
  }

  /** Called with false when an episode starts and true when writing works again. */
  onHealthChange(listener: (writable: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Reopen the file at `path` (SIGHUP, after rotation). */
  reopen(): void {
    if (this.path === '-') return;
    this.closeFd();
    this.open();
  }

  private write(bytes: Buffer): boolean {
    if (this.path === '-') {
      process.stdout.write(bytes);
      this.state.written++;
      return true;
    }
    const now = Date.now();
    if (now - this.lastCheck >= RECHECK_MS) {
      this.lastCheck = now;
      if (this.fd === undefined || this.rotated()) this.reopen();
    }
    try {
      if (this.fd === undefined) throw new Error(this.state.lastError || 'the audit log is not open');
      let offset = 0;
      while (offset < bytes.length) offset += writeSync(this.fd, bytes, offset);
    } catch (err) {
      this.state.failures++;
      this.fail(err);
      return false;
    }
    this.state.written++;
    if (this.state.failingSince !== '') {
      this.log?.info('audit log writable again', { auditLog: this.path, lost: this.state.failures, since: this.state.failingSince });
      this.state.failingSince = '';
      for (const l of this.listeners) l(true);
    }
    return true;
  }

  /** The path no longer names the file we hold open (renamed away, deleted, replaced). */
  private rotated(): boolean {
    try {
      return statSync(this.path).ino !== this.openedIno || fstatSync(this.fd!).nlink === 0;
    } catch {
      return true;
    }
  }

  private open(): void {
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o750 });
      this.fd = openSync(this.path, 'a', 0o640);
      this.openedIno = fstatSync(this.fd).ino;
    } catch (err) {
      this.fd = undefined;
      this.fail(err);
    }
  }

  private fail(err: unknown): void {
    const e = err as NodeJS.ErrnoException;
    const message = `${e.code ? `${e.code}: ` : ''}${e.message}`;
    this.state.lastError = message;
    this.closeFd();
    if (this.state.failingSince === '') {
      this.state.failingSince = new Date().toISOString();
      this.log?.error('cannot write the audit log: records are being lost until it is writable again', { auditLog: this.path, error: message });
      for (const l of this.listeners) l(false);
    }
  }

  private closeFd(): void {
    if (this.fd === undefined) return;
    try {
      closeSync(this.fd);
    } catch {
      /* already gone */
    }
    this.fd = undefined;
  }

  /** Close the file. */
  async close(): Promise<void> {
    this.closeFd();
  }
}

/**
 * The part of a plain decision line (no node context) that does not change from one answer of a verdict
 * to the next — everything but time, cached, name and durationMs — made once per verdict: a cached
 * verdict is answered, and audited, thousands of times a second.
 */
const stableParts = new WeakMap<Decision, string>();

/** A plain decision's line, field for field in the order AuditLog.record writes every line. */
export function decisionLine(decision: Decision, time = new Date()): string {
  const base = printableBase(decision);
  let stable = stableParts.get(base);
  if (stable === undefined) {
    const code = base.code;
    stable = printableJson({
      image: base.image,
      digest: base.digest,
      mediaType: base.mediaType,
      scope: base.scope,
      decision: base.decision,
      reason: base.reason,
      ...(code !== undefined ? { code } : {}),
      signatures: base.signatures,
      warnings: base.warnings,
      policyGeneration: base.policyGeneration,
    }).slice(1, -1);
    stableParts.set(base, stable);
  }
  return `{"time":"${time.toISOString()}","event":"decision","host":${HOST_JSON},"cached":${decision.cached === true},"name":${printableJson(decision.name)},${stable},"durationMs":${printableJson(decision.durationMs)},"level":"info","message":${printableJson(decision.decision)}}\n`;
}
