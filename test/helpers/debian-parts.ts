/**
 * Where scripts/fetch-debian-parts.sh unpacked Debian's newer containerd builds and the upstream protos
 * (the cache folder, `$SIGNET_CACHE_DIR` or `~/.cache/signet`, then `debian/`). containerd 1.6 and runc
 * are Debian 12's own, installed by the bootstrap.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const DEBIAN_CACHE = join(process.env['SIGNET_CACHE_DIR'] ?? join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'signet'), 'debian');

/** The folder holding `containerd`, `ctr` and `containerd-shim-runc-v2` of each containerd line. */
export const CONTAINERD_BIN = {
  '1.6': '/usr/bin',
  '1.7': join(DEBIAN_CACHE, 'containerd-1.7', 'usr', 'bin'),
  '2.x': join(DEBIAN_CACHE, 'containerd-2.x', 'usr', 'bin'),
} as const;
export type ContainerdLine = keyof typeof CONTAINERD_BIN;

/** Root of the Go source tree from Debian's -dev packages: `<root>/github.com/containerd/...`, `<root>/k8s.io/cri-api/...`. */
export const UPSTREAM_PROTOS = join(DEBIAN_CACHE, 'protos', 'usr', 'share', 'gocode', 'src');

export const upstreamProto = (relative: string): string => join(UPSTREAM_PROTOS, relative);

/** A clear failure instead of ENOENT deep in a test when the bootstrap has not run. */
export function requireDebianParts(): void {
  for (const p of [
    join(CONTAINERD_BIN['2.x'], 'containerd'),
    join(CONTAINERD_BIN['1.7'], 'containerd'),
    join(CONTAINERD_BIN['1.6'], 'containerd'),
    UPSTREAM_PROTOS,
  ]) {
    if (!existsSync(p)) throw new Error(`${p} is missing: run "npm test" (or bash scripts/bootstrap.sh) to fetch containerd and the upstream protos`);
  }
}
