#!/usr/bin/env bash
# Builds the docs site (apps/docs: VitePress over docs/, the package READMEs, TypeDoc and the stored bench
# results) and serves it on http://127.0.0.1:${PORT:-4173}/streamll/ until Ctrl-C. Installs what it needs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
# shellcheck source=toolchain.sh
source scripts/toolchain.sh
pnpm install --frozen-lockfile >/dev/null
pnpm turbo run build --filter=@streamll/docs --output-logs=errors-only
exec node apps/docs/scripts/serve.mjs
