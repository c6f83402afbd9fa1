#!/usr/bin/env bash
# The side-by-side benchmark (issue 8): on this machine, in one run, the
# broker against what a user would pick instead -- RabbitMQ 3.10 (durable
# quorum and classic queues, persistent messages, publisher confirms) and
# Redis 7 streams (appendonly yes, appendfsync always) -- at the same
# durability (nothing confirmed before it is fsynced), with the same ~2 KB
# payload bytes and the same clients and requests in flight, next to the
# floors: the disk's fdatasync and an empty gRPC call on loopback.
# "broker" submits one referral per call (SubmitReferral); "broker_batch"
# uses SubmitReferrals, as an agency uploading in bulk would: at N
# referrals in flight, calls of min(N, 64) referrals, N / that many calls
# at once (not at 1 in flight, where it would be the same as "broker").
#
#   bash deploy/bench.sh [--quick] [--out FILE] [--runs N]
#                        [--concurrency "1 16 64 256 1024"]
#                        [--systems "broker broker_batch rabbitmq_quorum rabbitmq_classic redis"]
#                        [--build_dir DIR] [--no_build] [--keep]
#
# Installs rabbitmq-server, redis-server, librabbitmq-dev, libhiredis-dev
# when missing (bench only; deploy/install-deps.sh does not), builds the
# broker, referral_loadgen and the clients in clients/bench/, starts every
# server itself on loopback (free ports, its own data directory under
# $REFERRAL_BENCH_DIR or /var/tmp, so on a real disk) and stops it at the
# end. Each configuration runs --runs times (3; 1 with --quick) and the
# table shows medians. Prints one table and writes the JSON (--out,
# default bench-results.json). Exit 1 when any run failed or a system has
# no result; --quick (concurrency 16 only, small runs, about a minute) is
# the smoke test ctest runs: it checks the harness, not speeds.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

quick=false
out=bench-results.json
runs=""
levels=""
systems="broker broker_batch rabbitmq_quorum rabbitmq_classic redis"
build_dir=build
do_build=true
keep=false
while (($#)); do
  case $1 in
    --quick) quick=true ;;
    --out) out=$2; shift ;;
    --out=*) out=${1#*=} ;;
    --runs) runs=$2; shift ;;
    --runs=*) runs=${1#*=} ;;
    --concurrency) levels=$2; shift ;;
    --concurrency=*) levels=${1#*=} ;;
    --systems) systems=$2; shift ;;
    --systems=*) systems=${1#*=} ;;
    --build_dir) build_dir=$2; shift ;;
    --build_dir=*) build_dir=${1#*=} ;;
    --no_build) do_build=false ;;
    --keep) keep=true ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if $quick; then
  runs=${runs:-1}
  levels=${levels:-16}
else
  runs=${runs:-3}
  levels=${levels:-1 16 64 256 1024}
fi
[[ $out = /* ]] || out=$repo/$out

# Messages per run at each concurrency: enough for a steady state and for
# p99.9 (1,000+ samples), small enough for the whole default run to stay
# under ten minutes on two cores.
messages_for() {
  if $quick; then echo 1500; return; fi
  case $1 in
    1) echo 1000 ;;
    16) echo 4000 ;;
    64) echo 8000 ;;
    256) echo 12000 ;;
    *) echo 16000 ;;
  esac
}
# Connections: one per request in flight up to 16, then 16 with the rest
# pipelined (a window each), the same for every system.
clients_for() { (($1 < 16)) && echo "$1" || echo 16; }
e2e_probes=$($quick && echo 50 || echo 200)
fsync_n=$($quick && echo 300 || echo 2000)

log() { echo "bench: $*" >&2; }

# --- packages (bench only; idempotent) -------------------------------------
bench_packages=(rabbitmq-server redis-server librabbitmq-dev libhiredis-dev)
missing=()
for p in "${bench_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  sudo=""
  ((EUID == 0)) || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # The packages' own start scripts are not wanted (no systemd in CI; the
  # benchmark starts its own instances): policy-rc.d refuses them.
  policy=/usr/sbin/policy-rc.d
  made_policy=false
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee $policy >/dev/null
    $sudo chmod +x $policy
    made_policy=true
  fi
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  $made_policy && $sudo rm -f $policy
fi

# --- build -------------------------------------------------------------------
targets=(referral_broker referral_loadgen referral_bench_floor
  referral_bench_rabbitmq referral_bench_redis)
if $do_build; then
  # Configure again: the peer clients exist only once their libraries do.
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build_dir" -j2 --target "${targets[@]}" >/dev/null
fi
broker_bin=$build_dir/server/referral_broker
loadgen=$build_dir/clients/referral_loadgen
floor=$build_dir/clients/referral_bench_floor
rabbit_client=$build_dir/clients/referral_bench_rabbitmq
redis_client=$build_dir/clients/referral_bench_redis
for b in "$broker_bin" "$loadgen" "$floor" "$rabbit_client" "$redis_client"; do
  [[ -x $b ]] || { log "$b is missing (build it, or drop --no_build)"; exit 1; }
done

# --- scratch space, servers and cleanup ------------------------------------
work=$(mktemp -d "${REFERRAL_BENCH_DIR:-/var/tmp}/referral-bench.XXXXXX")
results=$work/results.jsonl
: >"$results"
broker_pid=""
redis_pid=""
rabbit_node=""
rabbit_pid=""
epmd_port=""

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

stop_broker() {
  if [[ -n $broker_pid ]]; then
    kill "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=""
  fi
}
stop_redis() {
  if [[ -n $redis_pid ]]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=""
  fi
}
rabbit_env() {
  env HOME="$work/rabbit/home" ERL_EPMD_PORT="$epmd_port" \
    RABBITMQ_NODENAME="$rabbit_node" "$@"
}
stop_rabbit() {
  if [[ -n $rabbit_pid ]]; then
    rabbit_env /usr/lib/rabbitmq/bin/rabbitmqctl -q -n "$rabbit_node" \
      shutdown >/dev/null 2>&1 || kill "$rabbit_pid" 2>/dev/null || true
    wait "$rabbit_pid" 2>/dev/null || true
    rabbit_pid=""
  fi
  if [[ -n $epmd_port ]]; then
    # The node started its own epmd on our port; stop only that one.
    ERL_EPMD_PORT=$epmd_port epmd -kill >/dev/null 2>&1 || true
    epmd_port=""
  fi
}
cleanup() {
  stop_broker
  stop_redis
  stop_rabbit
  if $keep; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Records one client's JSON line: {"run":R,"result":{...}}.
record() {
  local run=$1 line
  while IFS= read -r line; do
    [[ $line == \{* ]] && printf '{"run":%d,"result":%s}\n' "$run" "$line" >>"$results"
  done
}
failures=0
failed() { log "FAILED: $*"; failures=$((failures + 1)); }

start_broker() {
  local dir=$1
  mkdir -p "$dir"
  # Production durability (synced group commit, audit trail: always on).
  # Plaintext only because the peers run without TLS too; the per-principal
  # rate limit is raised as for any load test.
  "$broker_bin" --listen=127.0.0.1:0 --data_dir="$dir/data" \
    --port_file="$dir/port" --metrics_listen=127.0.0.1:0 \
    --metrics_port_file="$dir/metrics_port" \
    --insecure_development --rate_limit_per_second=1e6 \
    --rate_limit_burst=1e6 >"$dir/broker.log" 2>&1 &
  broker_pid=$!
  for _ in $(seq 300); do
    [[ -s $dir/port ]] && return 0
    kill -0 "$broker_pid" 2>/dev/null || break
    sleep 0.1
  done
  failed "the broker did not start (see $dir/broker.log)"
  tail -5 "$dir/broker.log" >&2 || true
  return 1
}

start_redis() {
  local dir=$1
  mkdir -p "$dir"
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$dir" \
    --appendonly yes --appendfsync always --save "" --daemonize no \
    --logfile "$dir/redis.log" &
  redis_pid=$!
  for _ in $(seq 100); do
    redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.1
  done
  failed "redis-server did not start (see $dir/redis.log)"
  return 1
}

start_rabbit() {
  local dir=$work/rabbit
  rm -rf "$dir"
  mkdir -p "$dir/home" "$dir/mnesia" "$dir/log"
  rabbit_port=$(free_port)
  epmd_port=$(free_port)
  local dist_port
  dist_port=$(free_port)
  rabbit_node="referral-bench-$$@localhost"
  echo '[].' >"$dir/enabled_plugins"  # no management plugin
  printf 'listeners.tcp.default = 127.0.0.1:%s\nloopback_users.guest = true\n' \
    "$rabbit_port" >"$dir/rabbitmq.conf"
  rabbit_env RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$rabbit_port" \
    RABBITMQ_DIST_PORT="$dist_port" RABBITMQ_MNESIA_BASE="$dir/mnesia" \
    RABBITMQ_LOG_BASE="$dir/log" RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
    RABBITMQ_PID_FILE="$dir/pid" \
    /usr/lib/rabbitmq/bin/rabbitmq-server >"$dir/stdout" 2>&1 &
  rabbit_pid=$!
  for _ in $(seq 120); do
    if rabbit_env /usr/lib/rabbitmq/bin/rabbitmqctl -q -n "$rabbit_node" \
      await_startup --timeout 5 >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "$rabbit_pid" 2>/dev/null || break
    sleep 0.5
  done
  failed "rabbitmq-server did not start (see $dir/stdout and $dir/log)"
  tail -5 "$dir/stdout" >&2 || true
  return 1
}

# --- the payload and the floors --------------------------------------------
payload=$work/payload.bin
"$loadgen" --write_payload="$payload" >/dev/null
log "payload: $(stat -c %s "$payload") bytes (a fictitious referral, serialized once); work dir $work"
first_level=${levels%% *}

# The floors are measured in every repeat, next to the systems, so that
# they see the same disk and CPU conditions (a shared disk's sync latency
# drifts over minutes).
run_floors() {
  local r=$1
  for prealloc in false true; do
    "$floor" --mode=fdatasync --payload="$payload" --dir="$work" \
      --n="$fsync_n" --preallocate=$prealloc | record "$r" ||
      failed "fdatasync floor (preallocate=$prealloc)"
  done
  for c in $levels; do
    n=$(messages_for "$c")
    "$floor" --mode=grpc --payload="$payload" --concurrency="$c" \
      --clients="$(clients_for "$c")" --n=$((n * 2)) | record "$r" ||
      failed "empty gRPC floor at $c"
  done
}

# --- the systems -------------------------------------------------------------
# $4: referrals per call (1: SubmitReferral; more: SubmitReferrals, with
# $2 / $4 calls in flight).
# Prints, as one JSON line {"stages": ...}, where the broker's time went in
# the run just made, from its /metrics: the mean SubmitReferral handling
# time on the server and the mean of each group-commit stage (waited for the
# commit thread, applied, synced) over all the run's group commits (its
# drain's too), in ms, and mutations per group commit.
broker_stages() {
  python3 - "$(cat "$1/metrics_port")" <<'PY'
import json, re, sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics").read().decode()
values = {}
for line in text.splitlines():
    if line and not line.startswith("#"):
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
def mean(prefix, labels="", scale=1):
    # None when the series is missing or empty (the report says so).
    count = values.get(f"{prefix}_count{labels}", 0)
    return scale * values.get(f"{prefix}_sum{labels}", 0) / count if count else None
stages = {s + "_ms": mean("referral_store_group_commit_seconds",
                          f'{{stage="{s}"}}', 1000)
          for s in ("waited", "applied", "synced")}
stages["handling_ms"] = mean("grpc_server_handling_seconds",
    '{grpc_method="SubmitReferral",grpc_service="referral.v1.ReferralIntake"}', 1000)
stages["mutations_per_group"] = mean("referral_store_group_commit_mutations")
print(json.dumps({"stages": stages}))
PY
}

run_broker() {
  local r=$1 c=$2 n=$3 batch=${4:-1} e2e=0
  local dir=$work/broker-$r-$c-$batch
  local calls=$((c / batch))
  [[ $c == "$first_level" && $batch == 1 ]] && e2e=$e2e_probes
  start_broker "$dir" || return 0
  # Children varied per referral (same shape and size; the bytes differ
  # only there): with one set of children in every referral the broker
  # would link each new one to up to 1,000 earlier ones, work the peers
  # never do (see docs/benchmarks.md).
  "$loadgen" --server="127.0.0.1:$(cat "$dir/port")" --payload_file="$payload" \
    --n="$n" --concurrency="$calls" --batch="$batch" \
    --channels="$(clients_for "$calls")" --e2e_probes="$e2e" --json |
    record "$r" || failed "referral_broker at $c, batch $batch (run $r)"
  if [[ $c == "$first_level" && $batch == 1 ]]; then
    broker_stages "$dir" | record "$r" || failed "broker stages (run $r)"
  fi
  stop_broker
  rm -rf "$dir/data"
}
batch_for() { (($1 < 64)) && echo "$1" || echo 64; }

run_redis() {
  local r=$1 c=$2 n=$3 dir=$work/redis-$r-$2 e2e=0
  [[ $c == "$first_level" ]] && e2e=$e2e_probes
  # A fresh server and data directory per run, as the broker gets.
  start_redis "$dir" || return 0
  "$redis_client" --port="$redis_port" --payload="$payload" --n="$n" \
    --concurrency="$c" --clients="$(clients_for "$c")" --e2e="$e2e" |
    record "$r" || failed "redis at $c (run $r)"
  stop_redis
  rm -rf "$dir"
}

run_rabbit() {
  local type=$1 r=$2 c=$3 n=$4 e2e=0
  [[ $c == "$first_level" ]] && e2e=$e2e_probes
  # A fresh queue per run (the node is started once per repeat: it takes
  # seconds); the client deletes it at the end.
  "$rabbit_client" --port="$rabbit_port" --payload="$payload" \
    --queue_type="$type" --queue="bench-$type-$r-$c" --n="$n" \
    --concurrency="$c" --clients="$(clients_for "$c")" --e2e="$e2e" |
    record "$r" || failed "rabbitmq $type at $c (run $r)"
}

start_seconds=$SECONDS
for r in $(seq "$runs"); do
  log "run $r/$runs: floors (fdatasync in $work, on the data directories' disk; empty gRPC)"
  run_floors "$r"
  for system in $systems; do
    log "run $r/$runs: $system at ${levels// /, } in flight"
    case $system in
      broker)
        for c in $levels; do run_broker "$r" "$c" "$(messages_for "$c")" 1; done ;;
      broker_batch)
        for c in $levels; do
          ((c > 1)) || continue
          run_broker "$r" "$c" "$(messages_for "$c")" "$(batch_for "$c")"
        done ;;
      redis)
        for c in $levels; do run_redis "$r" "$c" "$(messages_for "$c")"; done ;;
      rabbitmq_quorum|rabbitmq_classic)
        if start_rabbit; then
          for c in $levels; do
            run_rabbit "${system#rabbitmq_}" "$r" "$c" "$(messages_for "$c")"
          done
        fi
        stop_rabbit ;;
      *) log "unknown system $system"; exit 2 ;;
    esac
  done
done
log "measured in $((SECONDS - start_seconds)) s"

# --- the table and the JSON -------------------------------------------------
machine="$(nproc) CPUs, $(uname -r), $(stat -f -c %T "$work") at $work"
versions="rabbitmq-server $(dpkg-query -W -f='${Version}' rabbitmq-server), redis-server $(dpkg-query -W -f='${Version}' redis-server), commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
python3 - "$results" "$out" "$quick" "$runs" "$levels" "$systems" "$machine" "$versions" "$failures" <<'PY'
import json, statistics, sys, time

results_path, out_path, quick, runs, levels, systems, machine, versions, failures = sys.argv[1:]
quick = quick == "true"
levels = [int(c) for c in levels.split()]
failures = int(failures)

# Every measurement as (system, phase, concurrency) -> list of summaries.
samples = {}
def add(system, phase, c, s):
    samples.setdefault((system, phase, c), []).append(s)

stage_runs = []  # the broker's server-side stages at 1 in flight, per run
for line in open(results_path):
    rec = json.loads(line)
    res = rec["result"]
    if "stages" in res:
        stage_runs.append(res["stages"])
        continue
    if "system" in res:  # the bench clients
        add(res["system"], res["phase"], res["concurrency"], res)
        continue
    # referral_loadgen --json; in flight = calls x referrals per call
    batch = res.get("batch", 1)
    c = res["concurrency"] * batch
    broker = "referral_broker" if batch == 1 else "referral_broker_batch"
    sub = res["submit"]
    add(broker, "intake", c, dict(
        ok=sub["ok"], failed=sub["failed"], seconds=sub["seconds"],
        per_second=sub["per_second"], p50_ms=sub["p50_ms"],
        p99_ms=sub["p99_ms"], p999_ms=res.get("submit_p999_ms", 0),
        max_ms=sub["max_ms"]))
    if res.get("drain"):
        d = res["decide"]
        add(broker, "drain", c, dict(
            ok=d["ok"], failed=d["failed"], seconds=d["seconds"],
            per_second=d["per_second"], p50_ms=d["p50_ms"], p99_ms=d["p99_ms"],
            p999_ms=0, max_ms=d["max_ms"]))
    if "e2e" in res:
        e = res["e2e"]
        add("referral_broker", "e2e", 1, dict(
            ok=e["ok"], failed=e["failed"], seconds=e["seconds"],
            per_second=e["per_second"], p50_ms=e["p50_ms"], p99_ms=e["p99_ms"],
            p999_ms=0, max_ms=e["max_ms"]))

def med(key, group):
    return statistics.median(s[key] for s in group)

table = {}
for key, group in samples.items():
    table[key] = {k: med(k, group) for k in
                  ("per_second", "p50_ms", "p99_ms", "p999_ms", "max_ms")}
    table[key]["runs"] = len(group)
    table[key]["failed"] = sum(s["failed"] for s in group)
    table[key]["ok"] = sum(s["ok"] for s in group)

peers = ["rabbitmq_quorum", "rabbitmq_classic", "redis_aof_always"]
names = {"broker": "referral_broker", "broker_batch": "referral_broker_batch",
         "redis": "redis_aof_always"}
brokers = ["referral_broker", "referral_broker_batch"]
wanted = [names.get(s, s) for s in systems.split()]

def get(system, phase, c, k="per_second"):
    v = table.get((system, phase, c))
    return None if v is None else v[k]

def ratio(a, b):
    return None if not a or not b else a / b

def broker_best(phase, c):
    """The broker's better API at this many in flight (None if neither ran)."""
    vals = [v for v in (get(b, phase, c) for b in brokers) if v]
    return max(vals) if vals else None

def fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, float) and abs(v) < 100:
        return f"{v:.{digits}f}" if digits else f"{v:.0f}"
    return f"{v:,.0f}"

lines = []
lines.append(f"machine: {machine}")
lines.append(f"versions: {versions}")
lines.append(f"median of {runs} run(s); throughput in msgs/s, latency in ms; "
             "x = the broker's throughput (the better of its two APIs) / this system's "
             "at the same in flight")
lines.append("")
hdr = f"{'system':<20} {'phase':<7} {'in flight':>9} {'msgs/s':>9} {'p50':>7} {'p99':>7} {'p99.9':>7}  {'broker/x':>8}"
lines.append(hdr)
lines.append("-" * len(hdr))
order = ["fdatasync_append", "fdatasync_prealloc", "empty_rpc"] + brokers + peers
for system in order:
    for phase in ("floor", "intake", "drain", "e2e"):
        for c in sorted({k[2] for k in table if k[0] == system and k[1] == phase}):
            v = table[(system, phase, c)]
            r = None
            if system not in brokers and phase in ("intake", "drain", "floor"):
                r = ratio(broker_best("intake" if phase == "floor" else phase, c), v["per_second"])
            if system in ("fdatasync_append", "fdatasync_prealloc"):
                r = ratio(get("referral_broker", "intake", 1), v["per_second"])
            lines.append(
                f"{system:<20} {phase:<7} {c:>9} {fmt(v['per_second'], 0):>9} "
                f"{fmt(v['p50_ms'], 2):>7} {fmt(v['p99_ms'], 2):>7} "
                f"{fmt(v['p999_ms'], 2) if v['p999_ms'] else '-':>7}  "
                f"{(fmt(r, 2) + 'x') if r else '':>8}")

# The issue's targets, computed from the medians.
def best_under(system, bound_ms=10.0):
    best = None
    for c in levels:
        v = table.get((system, "intake", c))
        if v and v["p99_ms"] <= bound_ms and (best is None or v["per_second"] > best[0]):
            best = (v["per_second"], c)
    return best
def peak(system, phase="intake"):
    vals = [(table[(system, phase, c)]["per_second"], c) for c in levels
            if (system, phase, c) in table]
    return max(vals) if vals else None
def best_of(found):
    found = [f for f in found if f]
    return max(found) if found else None

targets = {}
b10 = best_of(best_under(b) for b in brokers)
q10, r10 = best_under("rabbitmq_quorum"), best_under("redis_aof_always")
targets["intake_at_p99_10ms"] = dict(
    broker=b10, rabbitmq_quorum=q10, redis_aof_always=r10,
    ratio_vs_quorum=ratio(b10 and b10[0], q10 and q10[0]),
    ratio_vs_redis=ratio(b10 and b10[0], r10 and r10[0]),
    goal="broker >= 3x rabbitmq_quorum and >= 1x redis_aof_always")
bp, qp = best_of(peak(b) for b in brokers), peak("rabbitmq_quorum")
targets["peak_intake"] = dict(broker=bp, rabbitmq_quorum=qp,
                              ratio=ratio(bp and bp[0], qp and qp[0]),
                              goal="broker >= 1.5x rabbitmq_quorum")
f50 = get("fdatasync_prealloc", "floor", 1, "p50_ms")
fa50 = get("fdatasync_append", "floor", 1, "p50_ms")
e50 = get("empty_rpc", "floor", 1, "p50_ms")
s50 = get("referral_broker", "intake", 1, "p50_ms")
floor_sum = None if f50 is None or e50 is None else min(f50, fa50 or f50) + e50
targets["single_in_flight_p50"] = dict(
    broker_p50_ms=s50, fdatasync_p50_ms=min(f50, fa50) if f50 and fa50 else f50,
    empty_rpc_p50_ms=e50, ratio=ratio(s50, floor_sum),
    goal="broker p50 at 1 in flight <= 2x (fdatasync p50 + empty RPC p50)",
    server_stages_ms={k: statistics.median(r[k] for r in stage_runs)
                      for k in (stage_runs[0] if stage_runs else {})
                      if all(r.get(k) is not None for r in stage_runs)})
drain_vs_intake = {}
for c in levels:
    drain_vs_intake[c] = ratio(broker_best("drain", c), broker_best("intake", c))
targets["drain_vs_intake"] = dict(per_concurrency=drain_vs_intake,
                                  goal="broker drain >= intake (ratio >= 1)")
ceiling = {c: ratio(broker_best("intake", c), get("empty_rpc", "floor", c))
           for c in levels}
targets["broker_vs_empty_rpc"] = ceiling

def verdict(v, goal):
    return "-" if v is None else ("met" if v >= goal else "MISSED")
lines.append("")
lines.append("targets (from the medians above):")
t = targets["intake_at_p99_10ms"]
lines.append(f"  best intake with p99 <= 10 ms: broker {fmt(b10 and b10[0], 0)}/s, "
             f"quorum {fmt(q10 and q10[0], 0)}/s, redis {fmt(r10 and r10[0], 0)}/s; "
             f"broker/quorum {fmt(t['ratio_vs_quorum'], 2)} (goal 3: {verdict(t['ratio_vs_quorum'], 3)}), "
             f"broker/redis {fmt(t['ratio_vs_redis'], 2)} (goal 1: {verdict(t['ratio_vs_redis'], 1)})")
t = targets["peak_intake"]
lines.append(f"  peak intake: broker {fmt(bp and bp[0], 0)}/s, quorum {fmt(qp and qp[0], 0)}/s; "
             f"ratio {fmt(t['ratio'], 2)} (goal 1.5: {verdict(t['ratio'], 1.5)})")
t = targets["single_in_flight_p50"]
lines.append(f"  1 in flight: broker p50 {fmt(s50, 2)} ms vs fdatasync p50 "
             f"{fmt(t['fdatasync_p50_ms'], 2)} + empty RPC p50 {fmt(e50, 2)} ms: "
             f"{fmt(t['ratio'], 2)}x (goal <= 2: "
             f"{'-' if t['ratio'] is None else ('met' if t['ratio'] <= 2 else 'MISSED')})")
st = t["server_stages_ms"]
if st:
    lines.append(f"    where it goes at {levels[0]} in flight (server means, ms): "
                 f"SubmitReferral handled in "
                 f"{fmt(st.get('handling_ms'), 3)}, of which waiting for the commit "
                 f"thread {fmt(st.get('waited_ms'), 3)}, applying {fmt(st.get('applied_ms'), 3)}, "
                 f"synced write {fmt(st.get('synced_ms'), 3)}; "
                 f"{fmt(st.get('mutations_per_group'), 2)} mutations per group commit "
                 f"(group means over the run's submits, claims and decisions)")
lines.append("  broker drain/intake: " + ", ".join(
    f"{c}: {fmt(v, 2)}" for c, v in drain_vs_intake.items()))
lines.append("  broker/empty-RPC ceiling: " + ", ".join(
    f"{c}: {fmt(v, 2)}" for c, v in ceiling.items()))

print("\n".join(lines))

# The smoke check: every system measured, with numbers above zero.
problems = []
for system in wanted + ["empty_rpc", "fdatasync_append", "fdatasync_prealloc"]:
    phases = (["floor"] if system in ("empty_rpc", "fdatasync_append", "fdatasync_prealloc")
              else ["intake", "drain"] if system == "referral_broker_batch"
              else ["intake", "drain", "e2e"])
    for phase in phases:
        keys = [k for k in table if k[0] == system and k[1] == phase]
        if not keys:
            problems.append(f"no {phase} result for {system}")
        for k in keys:
            v = table[k]
            if not (v["per_second"] > 0 and v["p50_ms"] > 0 and v["ok"] > 0):
                problems.append(f"{k}: no throughput or latency")
            if v["failed"]:
                problems.append(f"{k}: {v['failed']} failed operations")
if "broker" in systems.split() and not targets["single_in_flight_p50"]["server_stages_ms"]:
    problems.append("no server-side stages from the broker's metrics")
if failures:
    problems.append(f"{failures} runs failed")

doc = dict(
    generated=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    machine=machine, versions=versions, quick=quick, runs=int(runs),
    concurrency=levels,
    results=[dict(system=k[0], phase=k[1], concurrency=k[2], **v)
             for k, v in sorted(table.items())],
    ratios={f"{p}": {str(c): ratio(broker_best("intake", c),
                                    get(p, "intake", c)) for c in levels}
            for p in peers},
    targets=targets, problems=problems, raw=[json.loads(l) for l in open(results_path)])
with open(out_path, "w") as f:
    json.dump(doc, f, indent=1, default=str)
print(f"\nwrote {out_path}")
if problems:
    print("problems: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
PY
