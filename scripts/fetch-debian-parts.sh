#!/usr/bin/env bash
# Fetches the parts of Debian's newer suites that the tests need, into a cache folder, without touching
# the system: containerd 2.x (testing) and 1.7 (trixie), and the upstream protos shipped by Debian's Go
# -dev packages (CRI, containerd's API, NRI, ttrpc). A separate apt configuration (own sources file
# built from the URIs of the system's Debian source, own lists and cache) is used with
# `apt-get download` and `dpkg -x`; the system's sources are never changed and nothing is installed.
# containerd 1.6 and runc come from Debian 12 itself (bootstrap.sh installs them).
#
# Prints nothing but its progress; the cache layout is described in test/helpers/debian-parts.ts.
set -euo pipefail

cache="${SIGNET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/signet}/debian"
say() { printf 'bootstrap: %s\n' "$*"; }

# suite:package:folder — the folder under $cache that the package is unpacked into.
parts=(
  "testing:containerd:containerd-2.x"
  "trixie:containerd:containerd-1.7"
  "testing:golang-k8s-cri-api-dev:protos"
  "testing:golang-github-containerd-containerd-api-dev:protos"
  "testing:golang-github-containerd-nri-dev:protos"
  "testing:golang-github-containerd-ttrpc-dev:protos"
)

missing=()
for part in "${parts[@]}"; do
  IFS=: read -r suite pkg folder <<<"$part"
  [ -f "$cache/$folder/.$pkg.done" ] || missing+=("$part")
done
if [ ${#missing[@]} -eq 0 ]; then
  say "containerd 2.x (testing) and 1.7 (trixie) and the upstream protos present in $cache"
  exit 0
fi

sources=/etc/apt/sources.list.d/debian.sources
uri=$(awk '/^URIs:/ { print $2; exit }' "$sources" 2>/dev/null || true)
if [ -z "$uri" ]; then
  say "cannot find a Debian URIs line in $sources: cannot fetch containerd 2.x/1.7 (the tests on those versions need them)"
  exit 1
fi

apt_dir="$cache/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"
{
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri testing main"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri trixie main"
} >"$apt_dir/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::Etc::Preferences=/dev/null"
  -o "Dir::Etc::PreferencesParts=/dev/null"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
  -o "APT::Sandbox::User=root"
)
say "fetching package lists of Debian testing and trixie into $apt_dir (a separate apt configuration)"
apt-get -qq "${apt_opts[@]}" update

for part in "${missing[@]}"; do
  IFS=: read -r suite pkg folder <<<"$part"
  say "fetching $pkg from $suite and unpacking it into $cache/$folder"
  (cd "$apt_dir/debs" && rm -f "${pkg}"_*.deb && apt-get -qq "${apt_opts[@]}" download "$pkg/$suite")
  mkdir -p "$cache/$folder"
  dpkg -x "$apt_dir/debs/${pkg}"_*.deb "$cache/$folder"
  dpkg-deb -f "$apt_dir/debs/${pkg}"_*.deb Version >"$cache/$folder/.$pkg.done"
  rm -f "$apt_dir/debs/${pkg}"_*.deb
done
"$cache/containerd-2.x/usr/bin/containerd" --version
"$cache/containerd-1.7/usr/bin/containerd" --version
