#!/usr/bin/env bash
# Runs the offline demo from a fresh clone: toolchain, install, build, run. No broker needed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
# shellcheck source=toolchain.sh
source scripts/toolchain.sh
pnpm install --frozen-lockfile >/dev/null
pnpm turbo run build --filter=@streamll/demo... --output-logs=errors-only >/dev/null
cd apps/demo
exec node dist/main.js "$@"
