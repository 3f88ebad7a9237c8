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
#
# The two majors run side by side, each going through the packages one at a time, in opposite orders (most of a
# sink's suite waits on its broker, so two passes share the 2 cores well: 5 min 12 s for both, against 7 min 52 s
# one after the other, on the same machine on 2026-12-07). A lock per package keeps both from
# running one package at once: its suites share a broker's users, queues and streams with themselves on the
# other major. Each line is prefixed with its major.
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
major_packages=()
for dir in packages/*; do [ -f "${dir}/vitest.config.ts" ] && major_packages+=("${dir}"); done
major_locks="$(mktemp -d)"

# run_major <major> <package dir>...: that major's pass over the packages given, in that order.
run_major() {
  local major=$1 failed=0 dir
  shift
  for dir in "$@"; do
    (cd "${dir}" && flock 9 && PATH="${STREAMLL_TOOLS}/node${major}/bin:${PATH}" &&
      node -e "process.exit(process.versions.node.startsWith('${major}.') ? 0 : 1)" &&
      node node_modules/vitest/vitest.mjs run "${exclude_args[@]}" --reporter=default --reporter=json \
        --outputFile=".vitest-report.node${major}.json") 9>"${major_locks}/${dir##*/}.lock" || failed=1
  done
  return "${failed}"
}

step "package tests on Node 22 and Node 26, side by side"
streamll_fetch_node 22 "${STREAMLL_TOOLS}/node22"
streamll_fetch_node 26 "${STREAMLL_TOOLS}/node26"
reversed_packages=()
for ((i = ${#major_packages[@]} - 1; i >= 0; i--)); do reversed_packages+=("${major_packages[i]}"); done
run_major 22 "${major_packages[@]}" 2>&1 | sed -u 's/^/[node 22] /' &
node22_pid=$!
run_major 26 "${reversed_packages[@]}" 2>&1 | sed -u 's/^/[node 26] /' &
node26_pid=$!
wait "${node22_pid}" || status=1
wait "${node26_pid}" || status=1
rm -rf "${major_locks}"

step "summary"
node scripts/test-summary.mjs || status=1
exit "${status}"
