#!/usr/bin/env bash
# Makes sure the Python the interop tests and examples/python use is ready, and prints its interpreter's path.
#
# A venv in .tools/python, made from Debian's python3 with --system-site-packages so that Debian's Kafka,
# RabbitMQ and Redis clients (python3-confluent-kafka, python3-pika, python3-redis) stay visible, with pydantic
# 2 and jsonschema installed by pip from pip's configured index. Idempotent and quiet when everything is in
# place; safe to run from several processes at once (a lock serialises the set-up).
#
# Why Debian's redis and not pip's: the redis wheel (8.x) needs async-timeout >= 4.0.3 on Python < 3.11.3, and
# Debian bookworm's Python is 3.11.2 while Debian ships async-timeout 4.0.2.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${STREAMLL_PYTHON_VENV:-${ROOT}/.tools/python}"
PYTHON="${VENV}/bin/python"
APT_PACKAGES=(python3 python3-venv python3-confluent-kafka python3-pika python3-redis)
PIP_PACKAGES=("pydantic>=2,<3" "jsonschema>=4")
# The venv is rebuilt when this list changes.
WANTED="apt: ${APT_PACKAGES[*]}; pip: ${PIP_PACKAGES[*]}"
STAMP="${VENV}/.streamll-ready"

ready() {
  [ -x "${PYTHON}" ] && [ "$(cat "${STAMP}" 2>/dev/null)" = "${WANTED}" ] &&
    "${PYTHON}" -c "import confluent_kafka, pika, redis, jsonschema, pydantic; assert pydantic.VERSION[0] == '2'" \
      >/dev/null 2>&1
}

if ready; then
  echo "${PYTHON}"
  exit 0
fi

mkdir -p "$(dirname "${VENV}")"
exec 9>"${VENV}.lock"
flock 9
if ready; then
  echo "${PYTHON}"
  exit 0
fi

missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "${package}" 2>/dev/null | grep -q "install ok installed" || missing+=("${package}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "python: installing ${missing[*]} from Debian" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi

echo "python: creating ${VENV} (Debian python3, --system-site-packages; ${PIP_PACKAGES[*]} from pip's index)" >&2
rm -rf "${VENV}"
/usr/bin/python3 -m venv --system-site-packages "${VENV}"
# Only the configured local index is reachable here: no retries against an unreachable default index.
"${PYTHON}" -m pip install --quiet --disable-pip-version-check --retries 0 --timeout 20 "${PIP_PACKAGES[@]}" \
  2> >(grep -v "^WARNING: " >&2)
if ! "${PYTHON}" -c "import confluent_kafka, pika, redis, jsonschema, pydantic; assert pydantic.VERSION[0] == '2'"; then
  echo "python: ${VENV} is missing a module after set-up" >&2
  exit 1
fi
echo "${WANTED}" >"${STAMP}"
echo "${PYTHON}"
