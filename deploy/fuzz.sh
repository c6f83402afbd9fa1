#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang, ASan and UBSan into
# build-fuzz/, then runs each one for FUZZ_SECONDS (default 60), FUZZ_PARALLEL
# at a time, from a copy of its committed seed corpus. Fails if any target
# crashes and prints where the crashing input was written. The repository is never
# written to: new corpus entries and crash files go to a scratch directory.
#
#   FUZZ_SECONDS=60     time per target
#   FUZZ_TARGETS="..."  a subset (default: all four)
#   FUZZ_OUT=DIR        scratch directory (default: a new mktemp -d)
#   FUZZ_JOBS=2         build parallelism
#   FUZZ_PARALLEL=N     targets fuzzed at once (default: nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

seconds=${FUZZ_SECONDS:-60}
targets=(${FUZZ_TARGETS:-key_codec_fuzz referral_json_fuzz routing_table_fuzz referral_validator_fuzz})
build=$root/build-fuzz

# The broker's own dependencies, then clang and libFuzzer's runtime
# (idempotent, like install-deps.sh).
bash deploy/install-deps.sh
missing=()
for p in clang-14 libclang-rt-14-dev; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "fuzz: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Only the fuzz targets and the libraries they link; not the broker or tests.
CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREFERRAL_FUZZ=ON -DBUILD_TESTING=OFF \
  >/dev/null
cmake --build "$build" -j"${FUZZ_JOBS:-2}" --target referral_fuzz

out=${FUZZ_OUT:-$(mktemp -d -t referral-fuzz.XXXXXX)}
mkdir -p "$out"
echo "fuzz: ${seconds}s per target; scratch directory $out"

# Sanitizer reports abort, so libFuzzer records the input; leaks count too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# One target: its committed regressions first, then FUZZ_SECONDS of fuzzing.
# Returns non-zero (after saying why) if either crashes.
fuzz_one() {
  local target=$1
  local bin=$build/tests/fuzz/$target
  local work=$out/$target
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/crashes"
  cp -R "tests/fuzz/corpus/$target/." "$work/corpus/"

  # Inputs that once crashed a target are replayed first, as they are.
  local regressions=tests/fuzz/regressions/$target
  if [[ -d $regressions ]] && compgen -G "$regressions/*" >/dev/null; then
    if ! "$bin" "$regressions"/* >"$work/regressions.log" 2>&1; then
      echo "fuzz: $target FAILED on a committed regression input;" \
           "log: $work/regressions.log" >&2
      tail -n 30 "$work/regressions.log" >&2
      return 1
    fi
  fi

  local log=$work/fuzz.log status=0
  "$bin" "$work/corpus" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/crashes/" >"$log" 2>&1 || status=$?

  # "#123456 DONE cov: 1234 ft: 5678 corp: 90/12Kb lim: 4096 exec/s: 2000"
  local done_line runs
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  echo "fuzz: $target: ${done_line:-no DONE line} (${runs:-?} runs)"
  if ((status != 0)); then
    echo "fuzz: $target FAILED (exit $status); log: $log" >&2
    grep -E 'ERROR: |SUMMARY: |_fuzz: |runtime error' "$log" | head -n 10 >&2 || true
    local f
    for f in "$work"/crashes/*; do
      [[ -e $f ]] && echo "fuzz: crashing input: $f" \
        "(reproduce: $bin $f; keep it under tests/fuzz/regressions/$target/)" >&2
    done
    return 1
  fi
}

# FUZZ_PARALLEL targets at a time (default: one per core), each single
# threaded, so the time per target stays FUZZ_SECONDS and the whole run
# takes targets / parallel of that.
parallel=${FUZZ_PARALLEL:-$(nproc)}
failed=0
for ((i = 0; i < ${#targets[@]}; i += parallel)); do
  pids=()
  for target in "${targets[@]:i:parallel}"; do
    fuzz_one "$target" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
  done
done
if ((failed)); then
  echo "fuzz: a target crashed (see above)" >&2
  exit 1
fi
echo "fuzz: all targets ran ${seconds}s without a crash"
