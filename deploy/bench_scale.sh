#!/usr/bin/env bash
# The scale measurements of issue 8 (benchmark mode: minutes and gigabytes,
# not part of CI). One broker, one data directory, production settings:
#
#   1. fill to 1,000 queued referrals, then probe: --probe unary submits at
#      16 in flight, then as many claims and decisions from the head of the
#      queue (referral_loadgen --decide_any) -- the costs at 1,000 queued;
#   2. fill to --queued (default 1,000,000) with SubmitReferrals, 8 calls of
#      100 in flight; every referral has its own fictitious children (no run
#      repeats another's: referral_loadgen --first_index), so the
#      repeated-concern index grows with the queue (2 children each, indexed
#      by NHS number while the test range lasts and by name and birth date);
#   3. once the broker is idle again (RocksDB compacting after the bulk load;
#      the wait is reported), the same probe -- the costs at --queued, and
#      their ratios; each probe also records the broker's CPU seconds by
#      thread (store-commit, gRPC, rocksdb:low compactions, ...), which
#      says where extra cost at depth goes;
#   4. the broker's resident memory with --queued waiting;
#   5. claim --claimed referrals (hour-long leases, left claimed), stop the
#      broker, start it again: seconds from exec to serving (its port file
#      is written once it serves), and its memory after the restart.
#
#   bash deploy/bench_scale.sh [--queued N] [--claimed N] [--probe N]
#                              [--build_dir DIR] [--no_build] [--perf]
#                              [--out FILE]
#
# --perf also samples the broker with `perf record` during each probe and
# writes the flat profile (self time by thread and library, then by thread
# and function, each above 0.5%) beside --out as <out>.perf-<queued>.txt.
#
# Data lives under $REFERRAL_BENCH_DIR or /var/tmp (removed at the end);
# 1,000,000 queued referrals take about 2.5 GB of disk there.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

queued=1000000
claimed=10000
probe=4000
build_dir=build
do_build=true
profile=false
out=bench-scale.json
while (($#)); do
  case $1 in
    --queued) queued=$2; shift ;;
    --queued=*) queued=${1#*=} ;;
    --claimed) claimed=$2; shift ;;
    --claimed=*) claimed=${1#*=} ;;
    --probe) probe=$2; shift ;;
    --probe=*) probe=${1#*=} ;;
    --build_dir) build_dir=$2; shift ;;
    --build_dir=*) build_dir=${1#*=} ;;
    --no_build) do_build=false ;;
    --perf) profile=true ;;
    --out) out=$2; shift ;;
    --out=*) out=${1#*=} ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "bench_scale: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ $out = /* ]] || out=$repo/$out
((queued > 1000)) || { echo "bench_scale: --queued must exceed 1000" >&2; exit 2; }

log() { echo "bench_scale: $(date +%T) $*" >&2; }

if $do_build; then
  cmake -S . -B "$build_dir" -G Ninja >/dev/null
  cmake --build "$build_dir" -j2 --target referral_broker referral_loadgen \
    referral_cli >/dev/null
fi
broker_bin=$build_dir/server/referral_broker
loadgen=$build_dir/clients/referral_loadgen
cli=$build_dir/clients/referral_cli

work=$(mktemp -d "${REFERRAL_BENCH_DIR:-/var/tmp}/referral-scale.XXXXXX")
broker_pid=""
cleanup() {
  [[ -n $broker_pid ]] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
payload=$work/payload.bin
"$loadgen" --write_payload="$payload" >/dev/null
results=$work/results.jsonl
: >"$results"
record() { python3 -c 'import json,sys; print(json.dumps({"step": sys.argv[1], "value": json.loads(sys.stdin.read())}))' "$1" >>"$results"; }

now() { date +%s.%N; }
# Starts the broker on the one data directory; sets broker_pid, port and
# start_seconds (exec to serving).
start_broker() {
  rm -f "$work/port"
  local t0
  t0=$(now)
  "$broker_bin" --listen=127.0.0.1:0 --data_dir="$work/data" \
    --port_file="$work/port" --metrics_listen=127.0.0.1:0 \
    --insecure_development --rate_limit_per_second=1e6 \
    --rate_limit_burst=1e6 >>"$work/broker.log" 2>&1 &
  broker_pid=$!
  until [[ -s $work/port ]]; do
    kill -0 "$broker_pid" 2>/dev/null || { tail -5 "$work/broker.log" >&2; exit 1; }
    sleep 0.01
  done
  start_seconds=$(python3 -c "print(round($(now) - $t0, 3))")
  port=$(cat "$work/port")
}
stop_broker() {
  local t0
  t0=$(now)
  kill "$broker_pid"
  wait "$broker_pid" || true
  broker_pid=""
  stop_seconds=$(python3 -c "print(round($(now) - $t0, 3))")
}
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$broker_pid/status"; }

loadgen_run() {
  "$loadgen" --server="127.0.0.1:$port" --payload_file="$payload" --json "$@" |
    tail -1
}
# Each loadgen run numbers its fictitious children from where the last one
# stopped, so no run repeats another's children (they would be linked as
# repeated concerns and raised: different work from the first probe's).
next_index=0
fill() {
  log "filling: $1 referrals (SubmitReferrals, 8 x 100 in flight)"
  loadgen_run --n="$1" --batch=100 --concurrency=8 --channels=8 --drain=false \
    --first_index="$next_index" | record "fill_$2"
  next_index=$((next_index + $1))
}
# Waits until the broker has been idle (under 5% of one core over 2 s):
# after a bulk load RocksDB compacts for a while, and the probe should
# measure the deep queue, not the compaction debt of the fill. Prints the
# seconds waited (at most 600).
settle() {
  local t0 ticks=$(getconf CLK_TCK) before after
  t0=$SECONDS
  while ((SECONDS - t0 < 600)); do
    before=$(awk '{print $14 + $15}' "/proc/$broker_pid/stat")
    sleep 2
    after=$(awk '{print $14 + $15}' "/proc/$broker_pid/stat")
    (((after - before) * 100 < ticks * 2 * 5)) && break
  done
  echo $((SECONDS - t0))
}
# Prints the broker's CPU seconds so far by thread name, digits dropped
# ("rocksdb:low0" counts as "rocksdb:low"), as JSON: where a probe's time
# went -- the store's commit thread, gRPC, or RocksDB's flushes and
# compactions.
thread_cpu() {
  python3 - "$broker_pid" <<'PY'
import json, os, re, sys
pid, tick = sys.argv[1], os.sysconf("SC_CLK_TCK")
seconds = {}
for task in os.listdir(f"/proc/{pid}/task"):
    try:
        stat = open(f"/proc/{pid}/task/{task}/stat").read()
    except OSError:
        continue  # the thread ended meanwhile
    name = re.sub(r"[0-9]+$", "", stat[stat.index("(") + 1:stat.rindex(")")])
    fields = stat[stat.rindex(")") + 2:].split()
    seconds[name] = seconds.get(name, 0) + (int(fields[11]) + int(fields[12])) / tick
print(json.dumps(seconds))
PY
}
run_probe() {
  log "probe at $1 queued: $probe submits at 16 in flight, then $probe claims + decisions from the head"
  local before perf_pid=""
  before=$(thread_cpu)
  if $profile; then
    perf record -q -F 999 -p "$broker_pid" -o "$work/perf-$1.data" 2>/dev/null &
    perf_pid=$!
  fi
  loadgen_run --n="$probe" --concurrency=16 --channels=16 --decide_any \
    --claim_batch=50 --drain_workers=4 --first_index="$next_index" |
    record "probe_$1"
  next_index=$((next_index + probe))
  if [[ -n $perf_pid ]]; then
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
    for fields in overhead,comm,dso overhead,comm,sym; do
      perf report -i "$work/perf-$1.data" --no-children --stdio \
        -F "$fields" --percent-limit 0.5 2>/dev/null |
        grep -v -e '^#' -e '^$' | sed 's/ *$//'
      echo
    done >"${out%.json}.perf-$1.txt"
    log "profile: ${out%.json}.perf-$1.txt"
  fi
  python3 -c 'import json,sys; a,b=json.loads(sys.argv[1]),json.loads(sys.argv[2]); print(json.dumps({k: round(v - a.get(k, 0), 2) for k, v in b.items()}))' \
    "$before" "$(thread_cpu)" | record "cpu_$1"
}

start_broker
log "broker started in ${start_seconds} s on an empty store ($work)"
fill 1000 small
run_probe 1000
fill $((queued - 1000)) large
settled=$(settle)
log "compaction after the fill settled in ${settled} s"
run_probe "$queued"
rss_queued=$(rss_mib)
queue=$(python3 -c 'import json,sys; print(next(next(iter(r["value"]["queues"])) for r in map(json.loads, open(sys.argv[1])) if r["step"] == sys.argv[2]))' "$results" "probe_$queued")
log "claiming $claimed from $queue (hour-long leases, left claimed)"
left=$claimed
while ((left > 0)); do
  max=$((left < 100 ? left : 100))
  "$cli" --server="127.0.0.1:$port" claim "$queue" --max="$max" \
    --lease_seconds=3600 --worker=scale-bench >/dev/null
  left=$((left - max))
done
stop_broker
log "stopped in ${stop_seconds} s"
start_broker
rss_restarted=$(rss_mib)
log "restarted in ${start_seconds} s with $queued queued and $claimed claimed"
disk=$(du -sb "$work/data" | cut -f1)
stop_broker

python3 - "$results" "$out" "$queued" "$claimed" "$probe" "$rss_queued" \
  "$start_seconds" "$rss_restarted" "$stop_seconds" "$disk" "$settled" \
  "$(nproc) CPUs, $(uname -r), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" <<'PY'
import json, sys
(results, out, queued, claimed, probe, rss_queued, restart_s, rss_restarted,
 stop_s, disk, settled, machine) = sys.argv[1:]
steps = {}
for line in open(results):
    rec = json.loads(line)
    steps[rec["step"]] = rec["value"]
small, large = steps["probe_1000"], steps[f"probe_{queued}"]
def cost(probe, phase, key):
    return probe[phase][key]
rows = []
def row(name, phase, key, unit, lower_is_better):
    a, b = cost(small, phase, key), cost(large, phase, key)
    ratio = (b / a if lower_is_better else a / b) if a and b else None
    rows.append(dict(measure=name, at_1000=a, at_queued=b, unit=unit,
                     cost_ratio=ratio))
row("submit throughput (16 in flight)", "submit", "per_second", "/s", False)
row("submit p50", "submit", "p50_ms", "ms", True)
row("submit p99", "submit", "p99_ms", "ms", True)
row("claim p50 (50 per call)", "claim", "p50_ms", "ms", True)
row("claim p99", "claim", "p99_ms", "ms", True)
row("decide throughput", "decide", "per_second", "/s", False)
fill = steps["fill_large"]["submit"]
lines = [f"machine: {machine}",
         f"queued {int(queued):,} (filled at {fill['per_second']:,.0f}/s batched), "
         f"probe {int(probe):,} submits and claims+decisions; "
         f"{settled} s of compaction after the fill before the second probe", "",
         f"{'measure':<34} {'at 1,000':>10} {'at ' + format(int(queued), ','):>14} {'cost ratio':>10}",
         "-" * 72]
for r in rows:
    lines.append(f"{r['measure']:<34} {r['at_1000']:>10.2f} {r['at_queued']:>14.2f} "
                 f"{(format(r['cost_ratio'], '.2f') + 'x') if r['cost_ratio'] else '-':>10}")
worst = max(r["cost_ratio"] for r in rows if r["cost_ratio"])
cpu_small, cpu_large = steps["cpu_1000"], steps[f"cpu_{queued}"]
lines += ["", f"broker CPU seconds during each probe, by thread "
          f"({int(probe):,} submits + {int(probe):,} claims and decisions):",
          f"{'thread':<34} {'at 1,000':>10} {'at ' + format(int(queued), ','):>14}"]
for name in sorted(set(cpu_small) | set(cpu_large),
                   key=lambda n: -cpu_large.get(n, 0)):
    a, b = cpu_small.get(name, 0), cpu_large.get(name, 0)
    if a >= 0.05 or b >= 0.05:
        lines.append(f"{name:<34} {a:>10.2f} {b:>14.2f}")
lines.append(f"{'total':<34} {sum(cpu_small.values()):>10.2f} "
             f"{sum(cpu_large.values()):>14.2f}")
restart = float(restart_s)
# The issue sets the restart and memory goals at 1,000,000 queued.
at_goal_depth = int(queued) == 1000000
def goal(text, met):
    if not at_goal_depth:
        return f"the goal, {text}, is for 1,000,000 queued"
    return f"goal {text}: {'met' if met else 'MISSED'}"
lines += ["",
          f"targets: cost at {int(queued):,} within 1.5x of 1,000: worst ratio {worst:.2f}x "
          f"({'met' if worst <= 1.5 else 'MISSED'})",
          f"  restart with {int(queued):,} queued and {int(claimed):,} claimed: {restart:.2f} s "
          f"({goal('< 3 s', restart < 3)}); clean stop took {float(stop_s):.2f} s",
          f"  resident memory with {int(queued):,} queued: {rss_queued} MiB while filled, "
          f"{rss_restarted} MiB after the restart "
          f"({goal('< 512 MiB', max(float(rss_queued), float(rss_restarted)) < 512)})",
          f"  data directory: {int(disk) / 2**30:.2f} GiB"]
print("\n".join(lines))
json.dump(dict(machine=machine, queued=int(queued), claimed=int(claimed),
               probe=int(probe), rows=rows, worst_cost_ratio=worst,
               restart_seconds=restart, stop_seconds=float(stop_s),
               rss_mib_queued=float(rss_queued),
               rss_mib_after_restart=float(rss_restarted),
               disk_bytes=int(disk), settle_seconds=int(settled), steps=steps),
          open(out, "w"), indent=1)
print(f"\nwrote {out}")
PY
