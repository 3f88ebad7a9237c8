#!/usr/bin/env bash
# Every benchmark, from a fresh clone, in one command: toolchain, install, build, brokers (as scripts/test.sh
# starts them), then each package's `bench` script one at a time (the sink benchmarks measure against the real
# brokers, so nothing else should share the cores). Every bench stores its results with the machine and the
# load average under packages/*/bench/results/ (test-support/bench-results.mjs); at the end every benchmark
# number the docs cite is rewritten from those files (scripts/docs-check/check-bench-numbers.mjs --update),
# so the docs state what this run measured. Prints the duration of every bench and of the whole run.
# Usage: bash scripts/bench.sh [package ...]   e.g. `bash scripts/bench.sh core sink-redis`
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
# shellcheck source=toolchain.sh
source scripts/toolchain.sh
started=${SECONDS}
pnpm install --frozen-lockfile >/dev/null
pnpm turbo run build --output-logs=errors-only >/dev/null
kafka_was_running=0
bash scripts/kafka/kafka.sh status >/dev/null 2>&1 && kafka_was_running=1
bash scripts/services.sh up
if [ "${kafka_was_running}" = 0 ] && [ "${STREAMLL_KEEP_KAFKA:-0}" != 1 ]; then
  trap 'bash scripts/kafka/kafka.sh stop >/dev/null 2>&1 || true' EXIT
fi

packages=("$@")
if [ "${#packages[@]}" = 0 ]; then
  for dir in packages/*/; do
    dir="${dir%/}"
    node -e 'process.exit(require(`./${process.argv[1]}/package.json`).scripts?.bench ? 0 : 1)' "${dir}" &&
      packages+=("${dir#packages/}")
  done
fi

status=0
for name in "${packages[@]}"; do
  printf '\n=== bench: %s (load average %s) ===\n' "${name}" "$(cut -d' ' -f1-3 /proc/loadavg)"
  bench_started=${SECONDS}
  (cd "packages/${name}" && pnpm run --silent bench) || { status=1; echo "bench ${name} FAILED"; }
  printf '=== bench: %s took %d s ===\n' "${name}" "$((SECONDS - bench_started))"
done

printf '\n=== docs: cited benchmark numbers from the stored results ===\n'
node scripts/docs-check/check-bench-numbers.mjs --update || status=1
elapsed=$((SECONDS - started))
printf '\nbench.sh: %d min %d s in all (%s)\n' "$((elapsed / 60))" "$((elapsed % 60))" "${packages[*]}"
# The whole run is meant to fit 15 minutes on the 2-core development machine when it is otherwise idle.
if [ "${elapsed}" -gt 900 ]; then
  echo "bench.sh: longer than 15 minutes: was the machine busy? (load average $(cut -d' ' -f1-3 /proc/loadavg))"
fi
exit "${status}"
