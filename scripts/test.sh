#!/usr/bin/env bash
# npm test: install what is missing, build, then run every test (unit and integration, real parts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
echo "test: lint and format checks (eslint, prettier)"
npx --no-install eslint src test scripts
npx --no-install prettier --check src test scripts >/dev/null || { npx --no-install prettier --check src test scripts; exit 1; }
echo "test: running mocha"
exec npx --no-install mocha --reporter ./scripts/mocha-summary-reporter.cjs "$@"
