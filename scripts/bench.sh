#!/usr/bin/env bash
# Every benchmark, from a fresh clone: toolchain, install, build, brokers, then `turbo run bench` one package
# at a time (the sink benchmarks measure against the real brokers, so nothing else should share the cores).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
# shellcheck source=toolchain.sh
source scripts/toolchain.sh
pnpm install --frozen-lockfile >/dev/null
pnpm turbo run build --output-logs=errors-only >/dev/null
kafka_was_running=0
bash scripts/kafka/kafka.sh status >/dev/null 2>&1 && kafka_was_running=1
bash scripts/services.sh up
if [ "${kafka_was_running}" = 0 ]; then
  trap 'bash scripts/kafka/kafka.sh stop >/dev/null 2>&1 || true' EXIT
fi
pnpm turbo run bench --concurrency=1 --output-logs=full "$@"
