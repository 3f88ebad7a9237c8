#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed (the browser tests drive it with playwright-core; Playwright's own
# browser download cannot work on these machines) and prints its path. Idempotent; quiet when installed.
set -euo pipefail
CHROMIUM="${STREAMLL_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "${CHROMIUM}" ]; then
  echo "browser: installing chromium from Debian" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
fi
[ -x "${CHROMIUM}" ] || { echo "browser: ${CHROMIUM} is missing after install" >&2; exit 1; }
echo "${CHROMIUM}"
