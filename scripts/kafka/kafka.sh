#!/usr/bin/env bash
# Real Apache Kafka (KRaft, single node) for streamll's development and CI test runs.
#
#   scripts/kafka/kafka.sh start    resolve the jars (Maven), make certs, format storage, start, wait until ready
#   scripts/kafka/kafka.sh stop     SIGTERM, wait, SIGKILL if needed; safe to repeat
#   scripts/kafka/kafka.sh status   exit 0 when the broker is up and answering, 1 otherwise
#   scripts/kafka/kafka.sh logs     print the broker log tail (`logs -f` follows it)
#   scripts/kafka/kafka.sh reset    stop and delete the data dir (topics, offsets); certs and jars stay
#   scripts/kafka/kafka.sh resolve  only resolve the broker jars (warms ~/.m2, e.g. for a CI cache)
#
# State lives in <repo>/.kafka (gitignored): classpath, rendered configs, data, logs, certs, pid file.
# Ports and paths are set by the STREAMLL_KAFKA_* variables described in scripts/kafka/README.md.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

STATE_DIR="${STREAMLL_KAFKA_HOME:-$REPO_ROOT/.kafka}"
DATA_DIR="$STATE_DIR/data"
LOG_DIR="$STATE_DIR/logs"
CERT_DIR="$STATE_DIR/certs"
PID_FILE="$STATE_DIR/kafka.pid"
CLASSPATH_FILE="$STATE_DIR/classpath.txt"
SERVER_PROPERTIES="$STATE_DIR/server.properties"
LOG4J_PROPERTIES="$STATE_DIR/log4j2.properties"
TOOLS_LOG4J_PROPERTIES="$STATE_DIR/log4j2-tools.properties"
POM="$SCRIPT_DIR/pom.xml"

PLAINTEXT_PORT="${STREAMLL_KAFKA_PLAINTEXT_PORT:-39092}"
SASL_SSL_PORT="${STREAMLL_KAFKA_SASL_SSL_PORT:-39093}"
OAUTH_PORT="${STREAMLL_KAFKA_OAUTH_PORT:-39094}"
CONTROLLER_PORT="${STREAMLL_KAFKA_CONTROLLER_PORT:-39095}"
SSL_PORT="${STREAMLL_KAFKA_SSL_PORT:-39096}"
OAUTH_REQUIRED_SCOPE="${STREAMLL_KAFKA_OAUTH_SCOPE:-kafka}"
OAUTH_REAUTH_MS="${STREAMLL_KAFKA_OAUTH_REAUTH_MS:-10000}"
HEAP="${STREAMLL_KAFKA_HEAP:-512m}"
START_TIMEOUT="${STREAMLL_KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${STREAMLL_KAFKA_STOP_TIMEOUT:-30}"
# A first start on a fresh machine downloads the jars while holding the lock; waiters must outlast that.
LOCK_TIMEOUT="${STREAMLL_KAFKA_LOCK_TIMEOUT:-900}"
# Local Maven repository for the jars (default: Maven's own, ~/.m2/repository).
MAVEN_REPO="${STREAMLL_KAFKA_MAVEN_REPO:-}"

# Test-only secrets: the keystore never leaves .kafka/ and the SCRAM user mirrors the PLAIN one.
KEYSTORE_PASSWORD="streamll-harness"
SCRAM_USER="streamll"
SCRAM_PASSWORD="streamll-secret"

JAVA_BIN="${JAVA_HOME:+$JAVA_HOME/bin/}java"
# Short-lived tool JVMs (format, readiness probe) start faster without the C2 compiler.
TOOL_JAVA_OPTS=(-Xmx192m -XX:+UseSerialGC -XX:TieredStopAtLevel=1)

log() { printf '[kafka.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

now_s() { date +%s; }

require_java() {
  command -v "$JAVA_BIN" >/dev/null 2>&1 || die "java not found (Kafka 4.x brokers need Java 17+; set JAVA_HOME)"
  local version major
  version="$("$JAVA_BIN" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
  major="${version%%.*}"
  [[ "$major" =~ ^[0-9]+$ ]] || die "cannot read the Java version from '$version'"
  ((major >= 17)) || die "Java $version found; Kafka 4.x brokers need Java 17 or newer"
}

# True when every jar named in the cached classpath still exists in the local Maven repository.
classpath_is_fresh() {
  [[ -s "$CLASSPATH_FILE" && "$CLASSPATH_FILE" -nt "$POM" ]] || return 1
  local jar jars
  IFS=':' read -r -a jars <"$CLASSPATH_FILE"
  for jar in "${jars[@]}"; do
    [[ -f "$jar" ]] || return 1
  done
}

resolve_classpath() {
  if classpath_is_fresh; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found: Maven resolves the Kafka jars (apt-get install -y maven)"
  local tmp="$CLASSPATH_FILE.tmp" started
  started="$(now_s)"
  local args=(-B -q -f "$POM" dependency:build-classpath "-Dmdep.outputFile=$tmp" -Dmdep.includeScope=runtime)
  [[ -n "$MAVEN_REPO" ]] && args+=("-Dmaven.repo.local=$MAVEN_REPO")
  rm -f "$tmp"
  # Offline first: after one online resolve everything is in ~/.m2 and this needs no network.
  if ! mvn -o "${args[@]}" >"$LOG_DIR/maven.log" 2>&1; then
    log "resolving Kafka jars from Maven Central (first run)"
    mvn "${args[@]}" >"$LOG_DIR/maven.log" 2>&1 || {
      tail -n 40 "$LOG_DIR/maven.log" >&2
      die "Maven could not resolve the Kafka jars (full output: $LOG_DIR/maven.log)"
    }
  fi
  [[ -s "$tmp" ]] || die "Maven produced no classpath (see $LOG_DIR/maven.log)"
  mv "$tmp" "$CLASSPATH_FILE"
  log "classpath ready in $(($(now_s) - started))s"
}

# CA + server certificate for 127.0.0.1/localhost + a client certificate for the SSL listener.
# Made once; delete .kafka/certs to get new ones.
ensure_certs() {
  if [[ -s "$CERT_DIR/ca.pem" && -s "$CERT_DIR/server.p12" && -s "$CERT_DIR/client.pem" && -s "$CERT_DIR/client.key" ]]; then
    return 0
  fi
  command -v openssl >/dev/null 2>&1 || die "openssl not found (apt-get install -y openssl)"
  log "generating test CA and certificates in $CERT_DIR"
  rm -rf "$CERT_DIR"
  mkdir -p "$CERT_DIR"
  (
    cd "$CERT_DIR"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
      -keyout ca.key -out ca.pem -subj "/CN=streamll test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
    printf '%s\n' \
      "basicConstraints=CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" \
      "subjectAltName=IP:127.0.0.1,DNS:localhost" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 -sha256 \
      -extfile server.ext -out server.pem 2>/dev/null
    openssl pkcs12 -export -in server.pem -inkey server.key -certfile ca.pem -name kafka \
      -out server.p12 -passout "pass:$KEYSTORE_PASSWORD"
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout client.key -out client.csr -subj "/CN=streamll-client" 2>/dev/null
    printf '%s\n' \
      "basicConstraints=CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=clientAuth" >client.ext
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 -sha256 \
      -extfile client.ext -out client.pem 2>/dev/null
    rm -f server.csr client.csr server.ext client.ext ca.srl
    # Readable by the test process whatever user runs it; these are throwaway test keys.
    chmod 644 ca.pem server.pem client.pem client.key
  )
}

render() {
  sed -e "s#@PLAINTEXT_PORT@#$PLAINTEXT_PORT#g" \
    -e "s#@SASL_SSL_PORT@#$SASL_SSL_PORT#g" \
    -e "s#@OAUTH_PORT@#$OAUTH_PORT#g" \
    -e "s#@CONTROLLER_PORT@#$CONTROLLER_PORT#g" \
    -e "s#@SSL_PORT@#$SSL_PORT#g" \
    -e "s#@DATA_DIR@#$DATA_DIR#g" \
    -e "s#@LOG_DIR@#$LOG_DIR#g" \
    -e "s#@CERT_DIR@#$CERT_DIR#g" \
    -e "s#@KEYSTORE_PASSWORD@#$KEYSTORE_PASSWORD#g" \
    -e "s#@OAUTH_REQUIRED_SCOPE@#$OAUTH_REQUIRED_SCOPE#g" \
    -e "s#@OAUTH_REAUTH_MS@#$OAUTH_REAUTH_MS#g" \
    "$1" >"$2"
}

render_configs() {
  render "$SCRIPT_DIR/server.properties.template" "$SERVER_PROPERTIES"
  render "$SCRIPT_DIR/log4j2.properties.template" "$LOG4J_PROPERTIES"
  # Tool JVMs (format, probe) log warnings to their own stderr, never into the broker's server.log.
  printf '%s\n' "status=warn" "appender.err.type=Console" "appender.err.name=STDERR" \
    "appender.err.target=SYSTEM_ERR" "appender.err.layout.type=PatternLayout" \
    "appender.err.layout.pattern=%p %m (%c)%n" "rootLogger.level=WARN" \
    "rootLogger.appenderRef.err.ref=STDERR" >"$TOOLS_LOG4J_PROPERTIES"
}

classpath() { cat "$CLASSPATH_FILE"; }

run_tool() {
  "$JAVA_BIN" "${TOOL_JAVA_OPTS[@]}" "-Dlog4j2.configurationFile=$TOOLS_LOG4J_PROPERTIES" -cp "$(classpath)" "$@"
}

format_storage() {
  if [[ -f "$DATA_DIR/meta.properties" ]]; then
    return 0
  fi
  mkdir -p "$DATA_DIR"
  local cluster_id
  # A KRaft cluster id is 16 random bytes in URL-safe base64 without padding.
  cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  log "formatting KRaft storage in $DATA_DIR (cluster $cluster_id)"
  run_tool kafka.tools.StorageTool format --cluster-id "$cluster_id" --config "$SERVER_PROPERTIES" \
    --add-scram "SCRAM-SHA-256=[name=$SCRAM_USER,password=$SCRAM_PASSWORD]" \
    --add-scram "SCRAM-SHA-512=[name=$SCRAM_USER,password=$SCRAM_PASSWORD]" \
    >"$LOG_DIR/format.log" 2>&1 || {
    cat "$LOG_DIR/format.log" >&2
    rm -rf "$DATA_DIR"
    die "formatting the KRaft storage failed"
  }
}

read_pid() {
  [[ -s "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  printf '%s' "$pid"
}

# The pid file names a live kafka.Kafka JVM started with this state dir's config (not a recycled pid).
broker_pid() {
  local pid
  pid="$(read_pid)" || return 1
  pid_alive "$pid" || return 1
  local cmdline
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *"kafka.Kafka $SERVER_PROPERTIES"* ]] || return 1
  printf '%s' "$pid"
}

# True while the process exists and is not a zombie: a broker that exited but was not reaped yet (the
# reaper is whatever adopted it, e.g. PID 1 in a container) counts as gone, so stop never waits for it.
pid_alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != "Z" && "$state" != "X" ]]
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A real metadata round trip over the PLAINTEXT listener, not just an open socket.
metadata_ok() {
  timeout 30 "$JAVA_BIN" "${TOOL_JAVA_OPTS[@]}" "-Dlog4j2.configurationFile=$TOOLS_LOG4J_PROPERTIES" \
    -cp "$(classpath)" org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "127.0.0.1:$PLAINTEXT_PORT" --list >"$LOG_DIR/probe.log" 2>&1
}

log_tail() {
  local lines="${1:-60}"
  if [[ -f "$LOG_DIR/server.log" ]]; then
    log "last $lines lines of $LOG_DIR/server.log:"
    tail -n "$lines" "$LOG_DIR/server.log" >&2
  fi
  if [[ -s "$LOG_DIR/stdout.log" ]]; then
    log "$LOG_DIR/stdout.log:"
    tail -n 20 "$LOG_DIR/stdout.log" >&2
  fi
}

cmd_status() {
  local pid
  if pid="$(broker_pid)" && port_open "$PLAINTEXT_PORT"; then
    echo "kafka: running (pid $pid) plaintext=127.0.0.1:$PLAINTEXT_PORT sasl_ssl=127.0.0.1:$SASL_SSL_PORT oauthbearer=127.0.0.1:$OAUTH_PORT ssl=127.0.0.1:$SSL_PORT"
    return 0
  fi
  echo "kafka: not running"
  return 1
}

cmd_start() {
  local started pid
  started="$(now_s)"
  if pid="$(broker_pid)"; then
    if port_open "$PLAINTEXT_PORT"; then
      log "already running (pid $pid)"
      return 0
    fi
    # A JVM of ours that is still starting: fall through to the readiness wait below.
  else
    rm -f "$PID_FILE"
    local port
    for port in "$PLAINTEXT_PORT" "$SASL_SSL_PORT" "$OAUTH_PORT" "$SSL_PORT" "$CONTROLLER_PORT"; do
      if port_open "$port"; then
        die "port 127.0.0.1:$port is taken by another process; stop it or set STREAMLL_KAFKA_*_PORT"
      fi
    done
    require_java
    mkdir -p "$STATE_DIR" "$LOG_DIR"
    resolve_classpath
    ensure_certs
    render_configs
    format_storage
    # One previous log is kept; a failed start then shows only this run's lines.
    [[ -f "$LOG_DIR/server.log" ]] && mv -f "$LOG_DIR/server.log" "$LOG_DIR/server.log.1"
    rm -f "$LOG_DIR/probe.log"
    log "starting Kafka broker (heap $HEAP)"
    # setsid: the broker outlives this shell and is not hit by signals sent to the caller's group.
    setsid "$JAVA_BIN" "-Xms128m" "-Xmx$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true \
      "-Dlog4j2.configurationFile=$LOG4J_PROPERTIES" "-Dkafka.logs.dir=$LOG_DIR" \
      -cp "$(classpath)" kafka.Kafka "$SERVER_PROPERTIES" \
      </dev/null >"$LOG_DIR/stdout.log" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$PID_FILE"
  fi

  local deadline=$((started + START_TIMEOUT))
  while :; do
    if ! pid_alive "$pid"; then
      log_tail 50
      rm -f "$PID_FILE"
      die "the broker exited during start-up"
    fi
    if port_open "$PLAINTEXT_PORT" && metadata_ok; then
      break
    fi
    if (($(now_s) >= deadline)); then
      log_tail 50
      [[ -s "$LOG_DIR/probe.log" ]] && { log "last readiness probe:"; tail -n 20 "$LOG_DIR/probe.log" >&2; }
      die "the broker was not ready within ${START_TIMEOUT}s (still running as pid $pid; run '$0 stop')"
    fi
    sleep 1
  done
  log "ready in $(($(now_s) - started))s (pid $pid): plaintext 127.0.0.1:$PLAINTEXT_PORT, sasl_ssl 127.0.0.1:$SASL_SSL_PORT, oauthbearer 127.0.0.1:$OAUTH_PORT, ssl 127.0.0.1:$SSL_PORT"
}

cmd_stop() {
  local pid
  if ! pid="$(broker_pid)"; then
    rm -f "$PID_FILE"
    log "not running"
    return 0
  fi
  log "stopping broker (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local waited=0
  while pid_alive "$pid"; do
    if ((waited >= STOP_TIMEOUT * 10)); then
      log "no exit after ${STOP_TIMEOUT}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  # The broker was started by another shell: wait until the kernel has really ended it (SIGKILL is not
  # instant), bounded so a stuck process cannot hang the caller.
  waited=0
  while pid_alive "$pid" && ((waited < 100)); do
    sleep 0.1
    waited=$((waited + 1))
  done
  pid_alive "$pid" && die "pid $pid survived SIGKILL"
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_logs() {
  [[ -f "$LOG_DIR/server.log" ]] || die "no broker log yet ($LOG_DIR/server.log)"
  if [[ "${1:-}" == "-f" ]]; then
    exec tail -n 50 -F "$LOG_DIR/server.log"
  fi
  tail -n "${1:-200}" "$LOG_DIR/server.log"
}

cmd_resolve() {
  require_java
  mkdir -p "$STATE_DIR" "$LOG_DIR"
  resolve_classpath
  log "$(tr ':' '\n' <"$CLASSPATH_FILE" | wc -l) jars in $CLASSPATH_FILE"
}

cmd_reset() {
  cmd_stop
  rm -rf "$DATA_DIR"
  log "data dir removed; the next start formats fresh storage"
}

# Serialises start/stop/reset: two test processes starting the harness at once must not launch two JVMs.
with_lock() {
  mkdir -p "$STATE_DIR"
  exec 9>"$STATE_DIR/.lock"
  command -v flock >/dev/null 2>&1 || die "flock not found (util-linux)"
  flock -w "$LOCK_TIMEOUT" 9 || die "timed out after ${LOCK_TIMEOUT}s waiting for another kafka.sh run to finish"
  "$@"
}

case "${1:-}" in
start) with_lock cmd_start ;;
stop) with_lock cmd_stop ;;
status) cmd_status ;;
logs) shift; cmd_logs "$@" ;;
reset) with_lock cmd_reset ;;
resolve) with_lock cmd_resolve ;;
*)
  echo "usage: $0 start|stop|status|logs [-f|N]|reset|resolve" >&2
  exit 2
  ;;
esac
