#!/usr/bin/env bash
# Installs what signet needs and is missing, saying what it does: Debian packages (the registry,
# SoftHSM2 and OpenSC used by the tests and the demo), npm dependencies, then the TypeScript build.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'bootstrap: %s\n' "$*"; }

node_major=$(node -p 'process.versions.node.split(".").map(Number).slice(0,2).join(".")')
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || { say "Node >= 20.19 is required (found $node_major)"; exit 1; }

# containerd is Debian 12's 1.6; runc and busybox-static (a runnable test image) serve every containerd.
# systemd: systemd-notify (how signetd signals readiness), systemd-socket-activate and systemd-analyze (its tests).
# curl: the shell verifier (verifier/signet-verifier.sh) asks signetd with it, once per pull.
packages=(docker-registry softhsm2 opensc openssl apache2-utils systemd containerd runc busybox-static curl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  say "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  # The docker-registry and containerd packages would start system-wide services where systemd runs;
  # tests start their own, as plain processes under temporary folders.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "Debian packages present: ${packages[*]}"
fi

bash scripts/fetch-debian-parts.sh

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
else
  say "npm dependencies present"
fi

say "building (tsc)"
npx --no-install tsc -p tsconfig.json
chmod +x dist/src/cli/signetd.js dist/src/cli/signet.js dist/src/cli/signet-verifier.js 2>/dev/null || true
