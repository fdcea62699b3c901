#!/usr/bin/env bash
# npm run bench: install what is missing, build, then measure (figures as ratios against baselines of the same run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh >&2
exec node dist/scripts/bench.js "$@"
