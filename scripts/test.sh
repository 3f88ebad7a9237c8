#!/usr/bin/env bash
# The whole test suite, from a fresh clone: toolchain, install, lint, build, typecheck, package checks,
# brokers, the Python environment (scripts/python.sh), every package's tests (the docs site in Chromium and the
# publish rehearsal among them), the docs' snippets, and the packages' Node-facing tests again on Node 22 and
# Node 26.
# Prints one closing line with the totals.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
# shellcheck source=toolchain.sh
source scripts/toolchain.sh

STARTED_AT=${SECONDS}
# Each step's header says how far into the run it starts, so a slow CI run shows where its time went.
step() { printf '\n=== %s (at %dm%02ds) ===\n' "$*" $(((SECONDS - STARTED_AT) / 60)) $(((SECONDS - STARTED_AT) % 60)); }

step "install"
pnpm install --frozen-lockfile

step "lint (biome)"
pnpm exec biome ci .

step "build"
pnpm turbo run build

step "typecheck"
pnpm turbo run typecheck

step "package checks (publint, attw)"
pnpm turbo run check:package

step "brokers"
kafka_was_running=0
bash scripts/kafka/kafka.sh status >/dev/null 2>&1 && kafka_was_running=1
bash scripts/services.sh up
# Leave the machine as we found it: stop Kafka only if this run started it.
if [ "${kafka_was_running}" = 0 ] && [ "${STREAMLL_KEEP_KAFKA:-0}" != 1 ]; then
  trap 'bash scripts/kafka/kafka.sh stop >/dev/null 2>&1 || true' EXIT
fi

step "python (examples/python and the interop tests)"
bash scripts/python.sh

step "browser"
# The docs site's tests drive Debian's Chromium; with CI=true a missing browser fails them, never skips.
STREAMLL_CHROMIUM="$(bash scripts/browser.sh)"
export STREAMLL_CHROMIUM

step "tests"
find packages apps scripts -maxdepth 2 -name '.vitest-report*.json' -delete
status=0
pnpm turbo run test --concurrency=1 --continue -- --reporter=default --reporter=json \
  --outputFile=.vitest-report.json || status=$?

# The packages promise `engines: >=22`; Node 24 stays the toolchain, so the oldest supported major (22) and the
# newest (26) run every package's suite once more, against the same brokers, without the suites whose subject is
# the broker, the client library or another language rather than Node: the disk-spill outage tests (30 s broker
# outages, 1–3 minutes each), the reader-group and reader suites (consumer groups, offsets, acknowledgements),
# the fault suites (a broker cut off and restored through a proxy), the refused-login suites (the broker's answer
# to bad credentials), the Python consumers and kcat, the Kafka harness check, and the viewer page in Chromium (the
# browser, not Node, runs it; its server is tested on every major). What stays exercises Node's APIs under our
# code on every major: core whole (fs, timers, child processes, the disk spill's unit tests), each sink's
# delivery, TLS, authentication, shutdown and process-exit suites, the CLIs as processes, and the viewer server.
# They take about 4 minutes a major where the whole suites took 7.
extra_major_excludes=(
  '**/node_modules/**'
  '**/spill-outage.test.ts'
  '**/reader-group.test.ts'
  '**/*event-reader.test.ts'
  '**/faults.test.ts'
  '**/redis-faults.test.ts'
  '**/login-refused.test.ts'
  '**/*auth-rejection.test.ts'
  '**/python-*.test.ts'
  '**/kcat.test.ts'
  'test/broker.test.ts'
  'test/browser.test.ts'
)
exclude_args=()
for pattern in "${extra_major_excludes[@]}"; do exclude_args+=(--exclude "${pattern}"); done
for major in 22 26; do
  step "package tests on Node ${major}"
  streamll_fetch_node "${major}" "${STREAMLL_TOOLS}/node${major}"
  for dir in packages/*; do
    [ -f "${dir}/vitest.config.ts" ] || continue
    (cd "${dir}" && PATH="${STREAMLL_TOOLS}/node${major}/bin:${PATH}" &&
      node -e "process.exit(process.versions.node.startsWith('${major}.') ? 0 : 1)" &&
      node node_modules/vitest/vitest.mjs run "${exclude_args[@]}" --reporter=default --reporter=json \
        --outputFile=".vitest-report.node${major}.json") || status=1
  done
done

step "summary"
node scripts/test-summary.mjs || status=1
exit "${status}"
