#!/usr/bin/env bash
# npm run demo: install what is missing, build, then show the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec node dist/scripts/demo.js
