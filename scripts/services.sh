#!/usr/bin/env bash
# Makes sure every broker the tests need is running: `scripts/services.sh up` (idempotent).
# Redis and RabbitMQ are normally started by the machine; they are restarted here if they are down.
# Kafka is started from the repo's own KRaft harness (scripts/kafka/kafka.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port="$1" name="$2" deadline=$((SECONDS + ${3:-60}))
  until port_open "${port}"; do
    if ((SECONDS > deadline)); then
      echo "services: ${name} did not open port ${port}" >&2
      return 1
    fi
    sleep 1
  done
}

redis_up() {
  if ! port_open 6379; then
    echo "services: starting redis-server on 127.0.0.1:6379" >&2
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_port 6379 redis 30
  fi
}

rabbitmq_up() {
  if ! port_open 5672; then
    echo "services: starting rabbitmq-server" >&2
    rabbitmq-server -detached
    rabbitmqctl await_startup --timeout 120 >/dev/null 2>&1 || true
    wait_port 5672 rabbitmq 120
  fi
}

kcat_up() {
  # The Kafka suite checks what the sink wrote with a second, independent client (kcat, from Debian).
  if ! command -v kcat >/dev/null 2>&1; then
    echo "services: installing kcat from Debian" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null; }
  fi
}

kafka_up() {
  bash "${ROOT}/scripts/kafka/kafka.sh" start
}

case "${1:-up}" in
  up)
    redis_up
    rabbitmq_up
    kcat_up
    kafka_up
    ;;
  down)
    bash "${ROOT}/scripts/kafka/kafka.sh" stop
    ;;
  *)
    echo "usage: scripts/services.sh up|down" >&2
    exit 2
    ;;
esac
