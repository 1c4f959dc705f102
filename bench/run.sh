#!/bin/bash
# bench/run.sh: build Keypool and the benchmark programs, run the benchmark
# against a mock upstream, and print a Markdown table.
#
# Usage: bench/run.sh [BUILD_DIR]
#
# Without BUILD_DIR a temporary build directory is made and removed again.
# With one, it is set up if needed (or switched to -Dbench=true) and reused.
#
# Every number is measured twice in the same run: through Keypool, and
# directly against the mock. "Added" values are Keypool minus direct; each
# phase is repeated BENCH_REPS times, alternating direct and Keypool, and the
# table shows medians over the repetitions.
#
# The OpenAI rows (an OpenAI client and an OpenAI provider) come first. The
# Anthropic rows follow: an Anthropic client and an Anthropic provider
# (passed through), an Anthropic client and an OpenAI provider, and an
# OpenAI client and an Anthropic provider (both translated). Each is compared
# with a direct run against the mock in the upstream's dialect.
#
# Knobs (environment): BENCH_REPS (3), BENCH_SECONDS (4, recorded seconds per
# non-streamed OpenAI run), BENCH_ANTHROPIC_SECONDS (2, the same for the
# Anthropic rows), BENCH_WARMUP (1, unrecorded seconds before that),
# BENCH_STREAM_ROUNDS (2, recorded rounds of 50 streams, after one warm-up
# round), BENCH_RAW (a file to which the raw JSON result lines are copied),
# BENCH_KEYPOOL (another keypool binary to measure, e.g. an older build, with
# this run's driver and mock).
#
# The exit status says whether the benchmark ran, never whether a target was
# met: no timing here is a pass/fail test.
#
# Copyright 2026 The Keypool authors
# SPDX-License-Identifier: GPL-3.0-or-later

set -euo pipefail

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPS=${BENCH_REPS:-3}
SECONDS_PER_RUN=${BENCH_SECONDS:-4}
ANTHROPIC_SECONDS=${BENCH_ANTHROPIC_SECONDS:-2}
WARMUP=${BENCH_WARMUP:-1}
STREAM_ROUNDS=${BENCH_STREAM_ROUNDS:-2}
RAW=${BENCH_RAW:-}

STREAMS=50
CHUNKS=100
INTERVAL_US=10000
HIGH_C=32

die () {
  echo "run.sh: $*" >&2
  exit 1
}

is_uint () {
  [[ $1 =~ ^[0-9]+$ ]]
}

is_uint "$REPS" && [ "$REPS" -ge 1 ] && [ "$REPS" -le 10 ] || die "BENCH_REPS must be 1..10"
is_uint "$SECONDS_PER_RUN" && [ "$SECONDS_PER_RUN" -ge 1 ] && [ "$SECONDS_PER_RUN" -le 30 ] ||
  die "BENCH_SECONDS must be 1..30"
is_uint "$ANTHROPIC_SECONDS" && [ "$ANTHROPIC_SECONDS" -ge 1 ] && [ "$ANTHROPIC_SECONDS" -le 30 ] ||
  die "BENCH_ANTHROPIC_SECONDS must be 1..30"
is_uint "$WARMUP" && [ "$WARMUP" -le 10 ] || die "BENCH_WARMUP must be 0..10"
is_uint "$STREAM_ROUNDS" && [ "$STREAM_ROUNDS" -ge 1 ] && [ "$STREAM_ROUNDS" -le 10 ] ||
  die "BENCH_STREAM_ROUNDS must be 1..10"

# Processes and directories ---------------------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/keypool-bench.XXXXXX")
BUILD_DIR=${1:-$WORK/build}
UPSTREAM_PID=
KEYPOOL_PID=

# Ends only the processes this script started, by their PIDs.
stop_pid () {
  local pid=$1

  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup () {
  stop_pid "$KEYPOOL_PID"
  stop_pid "$UPSTREAM_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Build -----------------------------------------------------------------------

echo "Building in $BUILD_DIR ..." >&2
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  meson setup "$BUILD_DIR" "$SRC_DIR" -Dtests=false -Dbench=true >"$WORK/meson.log" 2>&1 ||
    { cat "$WORK/meson.log" >&2; die "meson setup failed"; }
elif ! grep -q '"name": "bench", "value": true' "$BUILD_DIR/meson-info/intro-buildoptions.json" 2>/dev/null &&
     ! grep -q '"name":"bench","value":true' "$BUILD_DIR/meson-info/intro-buildoptions.json" 2>/dev/null; then
  meson configure "$BUILD_DIR" -Dbench=true >"$WORK/meson.log" 2>&1 ||
    { cat "$WORK/meson.log" >&2; die "meson configure -Dbench=true failed"; }
fi
ninja -C "$BUILD_DIR" src/keypool bench/bench-upstream bench/bench-driver >"$WORK/ninja.log" 2>&1 ||
  { tail -n 40 "$WORK/ninja.log" >&2; die "build failed"; }

# BENCH_KEYPOOL: another keypool binary to measure with this run's driver
# and mock, an older build say, for a before/after pair in one window.
KEYPOOL=${BENCH_KEYPOOL:-$BUILD_DIR/src/keypool}
UPSTREAM=$BUILD_DIR/bench/bench-upstream
DRIVER=$BUILD_DIR/bench/bench-driver
BUILDTYPE=$(sed -n 's/.*"name": *"buildtype", *"value": *"\([a-z]*\)".*/\1/p' \
              "$BUILD_DIR/meson-info/intro-buildoptions.json" 2>/dev/null | head -n 1)

# Helpers ---------------------------------------------------------------------

# Prints the number after "KEY": in a flat JSON object.
jget () {
  sed -n "s/.*\"$2\":\(-\{0,1\}[0-9][0-9.eE+-]*\).*/\1/p" <<<"$1"
}

status_kb () {
  sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status"
}

# Proportional set size: shared library pages count by the share of the
# processes that map them.
pss_kb () {
  sed -n "s/^Pss:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/smaps_rollup" 2>/dev/null || echo 0
}

# utime + stime of a process, in clock ticks.
cpu_ticks () {
  local stat

  stat=$(cat "/proc/$1/stat")
  stat=${stat##*) }
  awk '{ print $12 + $13 }' <<<"$stat"
}

fd_count () {
  ls "/proc/$1/fd" | wc -l
}

median () {
  sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# record NAME VALUE: keeps one repetition's value of a metric.
record () {
  echo "$2" >>"$WORK/m.$1"
}

med () {
  median <"$WORK/m.$1"
}

raw () {
  echo "$1" >>"$WORK/raw.jsonl"
}

stats () {
  "$DRIVER" --get "$UPSTREAM_ROOT/stats${1:-}"
}

# Waits (bounded) for a first stdout line in FILE from PID.
wait_line () {
  local file=$1 pid=$2 what=$3

  for _ in $(seq 1 100); do
    if [ -s "$file" ] && [ "$(wc -l <"$file")" -ge 1 ]; then
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$WORK"/*.err >&2 || true
  die "$what did not start"
}

# Start the mock upstream and Keypool ------------------------------------------

"$UPSTREAM" --chunks "$CHUNKS" --interval-us "$INTERVAL_US" >"$WORK/upstream.out" 2>"$WORK/upstream.err" &
UPSTREAM_PID=$!
wait_line "$WORK/upstream.out" "$UPSTREAM_PID" "bench-upstream"
UPSTREAM_URL=$(head -n 1 "$WORK/upstream.out")
UPSTREAM_ROOT=${UPSTREAM_URL%/v1}

# Two providers on the same mock: OpenAI's dialect (bench/chat; bench/stamped
# has the emit time in each chunk's text, which survives translation) and
# Anthropic's (bench-anthropic/chat, served at /messages).
mkdir -p "$WORK/providers" "$WORK/config"
cat >"$WORK/providers/bench.json" <<EOF
{"schema":1,"id":"bench","name":"Bench mock","dialect":"openai","base_url":"$UPSTREAM_URL","auth":"bearer","env":["BENCH_API_KEY"],"requires_key":true,
 "models":[{"id":"bench/chat","upstream_id":"chat","input":1.0,"output":2.0,"context":8192},
           {"id":"bench/stamped","upstream_id":"stamped","input":1.0,"output":2.0,"context":8192}]}
EOF
cat >"$WORK/providers/bench-anthropic.json" <<EOF
{"schema":1,"id":"bench-anthropic","name":"Bench mock (Anthropic)","dialect":"anthropic","base_url":"$UPSTREAM_URL",
 "auth":{"type":"header","name":"x-api-key"},"headers":{"anthropic-version":"2023-06-01"},
 "env":["BENCH_API_KEY"],"requires_key":true,
 "models":[{"id":"bench-anthropic/chat","upstream_id":"chat-a","input":1.0,"output":2.0,"context":8192}]}
EOF
TOKEN=bench-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')

# Keypool keeps to the work directory: its own config, data (the ledger) and
# XDG dirs, no keyring, and no session bus, so that it neither finds a running
# Keypool to hand the command to nor touches the user's files.
mkdir -p "$WORK/data" "$WORK/xdg"
env -u G_MESSAGES_DEBUG -u G_DEBUG -u DISPLAY -u WAYLAND_DISPLAY \
  DBUS_SESSION_BUS_ADDRESS="unix:path=$WORK/no-session-bus" \
  XDG_CONFIG_HOME="$WORK/xdg" XDG_DATA_HOME="$WORK/xdg" XDG_CACHE_HOME="$WORK/xdg" \
  XDG_STATE_HOME="$WORK/xdg" \
  KEYPOOL_PROVIDERS_DIR="$WORK/providers" \
  KEYPOOL_CONFIG_DIR="$WORK/config" \
  KEYPOOL_DATA_DIR="$WORK/data" \
  KEYPOOL_NO_KEYRING=1 \
  KEYPOOL_TOKEN="$TOKEN" \
  BENCH_API_KEY=bench-key \
  "$KEYPOOL" --headless --port 0 >"$WORK/keypool.out" 2>"$WORK/keypool.err" &
KEYPOOL_PID=$!
wait_line "$WORK/keypool.out" "$KEYPOOL_PID" "keypool"
KEYPOOL_URL=$(sed -n '1s/^Keypool is serving on \(http:[^ ]*\).*/\1/p' "$WORK/keypool.out")
[ -n "$KEYPOOL_URL" ] || die "unexpected first line from keypool: $(head -n 1 "$WORK/keypool.out")"

sleep 1
IDLE_RSS=$(status_kb "$KEYPOOL_PID" VmRSS)
IDLE_ANON=$(status_kb "$KEYPOOL_PID" RssAnon)
IDLE_FILE=$(status_kb "$KEYPOOL_PID" RssFile)
IDLE_PSS=$(pss_kb "$KEYPOOL_PID")
IDLE_FDS=$(fd_count "$KEYPOOL_PID")
IDLE_THREADS=$(sed -n 's/^Threads:[[:space:]]*//p' "/proc/$KEYPOOL_PID/status")
CLK_TCK=$(getconf CLK_TCK)

echo "Mock upstream $UPSTREAM_URL, Keypool $KEYPOOL_URL (pid $KEYPOOL_PID), idle RSS ${IDLE_RSS} kB" >&2

# Runs -------------------------------------------------------------------------

# drive TARGET MODEL ARGS...: one driver run against Keypool or the mock.
drive () {
  local target=$1 model=$2 out
  shift 2

  if [ "$target" = keypool ]; then
    out=$("$DRIVER" --url "$KEYPOOL_URL" --token "$TOKEN" --model "$model" --label keypool "$@")
  else
    out=$("$DRIVER" --url "$UPSTREAM_URL" --token unused --model "$model" --label direct "$@")
  fi
  raw "$out"
  echo "$out"
}

ERRORS=0
BAD_BYTES=0
USAGE_LEAKS=0
CHUNKED_ANSWERS=0
CLIENT_RECONNECTS=0

check () {
  local out=$1 e b u ch sc

  e=$(jget "$out" errors)
  b=$(jget "$out" bad_bytes)
  u=$(jget "$out" usage_leaks)
  ch=$(jget "$out" chunked_answers)
  sc=$(jget "$out" server_closes)
  ERRORS=$((ERRORS + ${e:-0}))
  BAD_BYTES=$((BAD_BYTES + ${b:-0}))
  USAGE_LEAKS=$((USAGE_LEAKS + ${u:-0}))
  CHUNKED_ANSWERS=$((CHUNKED_ANSWERS + ${ch:-0}))
  CLIENT_RECONNECTS=$((CLIENT_RECONNECTS + ${sc:-0}))
}

# keypool_run NAME MODEL ARGS...: a Keypool run, counting the upstream
# connections the mock accepted and Keypool's CPU time meanwhile.
keypool_run () {
  local name=$1 model=$2 before after ticks0 ticks1 out conns peak
  shift 2

  before=$(stats "?reset")
  ticks0=$(cpu_ticks "$KEYPOOL_PID")
  out=$(drive keypool "$model" "$@")
  ticks1=$(cpu_ticks "$KEYPOOL_PID")
  after=$(stats)
  check "$out"

  # Each /stats query is one more accepted connection: minus the second one.
  conns=$(( $(jget "$after" accepted) - $(jget "$before" accepted) - 1 ))
  peak=$(( $(jget "$after" open_peak) - 1 ))
  record "$name.conns" "$conns"
  record "$name.peak" "$peak"
  record "$name.upstream_requests" "$(( $(jget "$after" chat_requests) - $(jget "$before" chat_requests) ))"
  record "$name.cpu_ms" "$(( (ticks1 - ticks0) * 1000 / CLK_TCK ))"
  echo "$out"
}

PLAIN_ARGS=(--mode plain --warmup "$WARMUP" --duration "$SECONDS_PER_RUN")
A_PLAIN_ARGS=(--mode plain --warmup "$WARMUP" --duration "$ANTHROPIC_SECONDS")
STREAM_ARGS=(--mode stream --streams "$STREAMS" --rounds $((STREAM_ROUNDS + 1)) --warmup-rounds 1
             --expect-chunks "$CHUNKS" --duration 60)

for rep in $(seq 1 "$REPS"); do
  echo "Repetition $rep/$REPS ..." >&2

  for c in 1 "$HIGH_C"; do
    out=$(drive direct chat "${PLAIN_ARGS[@]}" --concurrency "$c")
    check "$out"
    record "d.c$c.p50" "$(jget "$out" lat_p50_us)"
    record "d.c$c.p99" "$(jget "$out" lat_p99_us)"
    record "d.c$c.rps" "$(jget "$out" rps)"

    out=$(keypool_run "k.c$c" bench/chat "${PLAIN_ARGS[@]}" --concurrency "$c")
    record "k.c$c.p50" "$(jget "$out" lat_p50_us)"
    record "k.c$c.p99" "$(jget "$out" lat_p99_us)"
    record "k.c$c.rps" "$(jget "$out" rps)"
    record "k.c$c.requests" "$(jget "$out" requests)"
  done

  out=$(drive direct chat "${STREAM_ARGS[@]}")
  check "$out"
  record d.s.ttfc50 "$(jget "$out" ttfc_p50_us)"
  record d.s.ttfc99 "$(jget "$out" ttfc_p99_us)"
  record d.s.chunk50 "$(jget "$out" chunk_p50_us)"
  record d.s.chunk99 "$(jget "$out" chunk_p99_us)"
  record d.s.arrive50 "$(jget "$out" arrival_p50_us)"
  record d.s.arrive99 "$(jget "$out" arrival_p99_us)"

  out=$(keypool_run k.s bench/chat "${STREAM_ARGS[@]}")
  record k.s.ttfc50 "$(jget "$out" ttfc_p50_us)"
  record k.s.ttfc99 "$(jget "$out" ttfc_p99_us)"
  record k.s.chunk50 "$(jget "$out" chunk_p50_us)"
  record k.s.chunk99 "$(jget "$out" chunk_p99_us)"
  record k.s.arrive50 "$(jget "$out" arrival_p50_us)"
  record k.s.arrive99 "$(jget "$out" arrival_p99_us)"
  record k.s.requests "$(jget "$out" streams_ok)"

  # Anthropic client, Anthropic provider: passed through. Direct: the mock's
  # /messages.
  for c in 1 "$HIGH_C"; do
    out=$(drive direct chat-a --dialect anthropic "${A_PLAIN_ARGS[@]}" --concurrency "$c")
    check "$out"
    record "ad.c$c.p50" "$(jget "$out" lat_p50_us)"
    record "ad.c$c.p99" "$(jget "$out" lat_p99_us)"
    record "ad.c$c.rps" "$(jget "$out" rps)"

    out=$(keypool_run "aa.c$c" bench-anthropic/chat --dialect anthropic "${A_PLAIN_ARGS[@]}" \
                      --concurrency "$c")
    record "aa.c$c.p50" "$(jget "$out" lat_p50_us)"
    record "aa.c$c.p99" "$(jget "$out" lat_p99_us)"
    record "aa.c$c.rps" "$(jget "$out" rps)"
  done

  out=$(drive direct chat-a --dialect anthropic "${STREAM_ARGS[@]}")
  check "$out"
  record ad.s.chunk50 "$(jget "$out" chunk_p50_us)"
  record ad.s.chunk99 "$(jget "$out" chunk_p99_us)"

  out=$(keypool_run aa.s bench-anthropic/chat --dialect anthropic "${STREAM_ARGS[@]}")
  record aa.s.chunk50 "$(jget "$out" chunk_p50_us)"
  record aa.s.chunk99 "$(jget "$out" chunk_p99_us)"

  # Anthropic client, OpenAI provider: translated. Direct: the mock's
  # /chat/completions (requests/s: the OpenAI run at c=$HIGH_C above; streams:
  # chunks that carry their emit time in the text).
  out=$(keypool_run "ao.c$HIGH_C" bench/chat --dialect anthropic "${A_PLAIN_ARGS[@]}" \
                    --concurrency "$HIGH_C")
  record "ao.c$HIGH_C.rps" "$(jget "$out" rps)"

  out=$(drive direct stamped "${STREAM_ARGS[@]}")
  check "$out"
  record od.s.chunk50 "$(jget "$out" chunk_p50_us)"
  record od.s.chunk99 "$(jget "$out" chunk_p99_us)"

  out=$(keypool_run ao.s bench/stamped --dialect anthropic "${STREAM_ARGS[@]}")
  record ao.s.chunk50 "$(jget "$out" chunk_p50_us)"
  record ao.s.chunk99 "$(jget "$out" chunk_p99_us)"

  # OpenAI client, Anthropic provider: translated. Direct: the Anthropic runs
  # against the mock above.
  out=$(keypool_run "oa.c$HIGH_C" bench-anthropic/chat "${A_PLAIN_ARGS[@]}" --concurrency "$HIGH_C")
  record "oa.c$HIGH_C.rps" "$(jget "$out" rps)"

  out=$(keypool_run oa.s bench-anthropic/chat "${STREAM_ARGS[@]}")
  record oa.s.chunk50 "$(jget "$out" chunk_p50_us)"
  record oa.s.chunk99 "$(jget "$out" chunk_p99_us)"
done

sleep 2
AFTER_RSS=$(status_kb "$KEYPOOL_PID" VmRSS)
AFTER_ANON=$(status_kb "$KEYPOOL_PID" RssAnon)
AFTER_FILE=$(status_kb "$KEYPOOL_PID" RssFile)
PEAK_RSS=$(status_kb "$KEYPOOL_PID" VmHWM)
AFTER_FDS=$(fd_count "$KEYPOOL_PID")
AFTER_THREADS=$(sed -n 's/^Threads:[[:space:]]*//p' "/proc/$KEYPOOL_PID/status")
# Client-side sockets Keypool still holds after its clients hung up.
KEYPOOL_PORT=${KEYPOOL_URL##*:}
KEYPOOL_PORT=${KEYPOOL_PORT%/v1}
CLOSE_WAIT=$(ss -Htn state close-wait "( sport = :$KEYPOOL_PORT )" 2>/dev/null | wc -l || echo "?")
kill -0 "$KEYPOOL_PID" 2>/dev/null || die "keypool exited during the benchmark"

[ -z "$RAW" ] || cp "$WORK/raw.jsonl" "$RAW"

# Table -------------------------------------------------------------------------

ms () {
  awk -v v="$1" 'BEGIN { if (v == "nan" || v == "") print "n/a"; else printf "%.3f", v / 1000 }'
}

added_ms () {
  awk -v k="$1" -v d="$2" 'BEGIN { printf "%+.3f", (k - d) / 1000 }'
}

# verdict VALUE OP LIMIT
verdict () {
  awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
    ok = (op == "<=") ? (v <= l) : (v >= l);
    print ok ? "yes" : "**no**" }'
}

ratio () {
  awk -v k="$1" -v d="$2" 'BEGIN { printf "%.3f×", k / d }'
}

mb () {
  awk -v v="$1" 'BEGIN { printf "%.1f", v / 1024 }'
}

row () {
  echo "| $1 | $2 | $3 | $4 | $5 | $6 |"
}

D1_50=$(med d.c1.p50); K1_50=$(med k.c1.p50)
D1_99=$(med d.c1.p99); K1_99=$(med k.c1.p99)
D32_50=$(med d.c32.p50); K32_50=$(med k.c32.p50)
D32_99=$(med d.c32.p99); K32_99=$(med k.c32.p99)
D32_RPS=$(med d.c32.rps); K32_RPS=$(med k.c32.rps)
D1_RPS=$(med d.c1.rps); K1_RPS=$(med k.c1.rps)
DS_T50=$(med d.s.ttfc50); KS_T50=$(med k.s.ttfc50)
DS_T99=$(med d.s.ttfc99); KS_T99=$(med k.s.ttfc99)
DS_C50=$(med d.s.chunk50); KS_C50=$(med k.s.chunk50)
DS_C99=$(med d.s.chunk99); KS_C99=$(med k.s.chunk99)
RATIO=$(awk -v k="$K32_RPS" -v d="$D32_RPS" 'BEGIN { printf "%.3f", k / d }')
A1_50=$(awk -v k="$K1_50" -v d="$D1_50" 'BEGIN { print k - d }')
A1_99=$(awk -v k="$K1_99" -v d="$D1_99" 'BEGIN { print k - d }')
AC_50=$(awk -v k="$KS_C50" -v d="$DS_C50" 'BEGIN { print k - d }')
AC_99=$(awk -v k="$KS_C99" -v d="$DS_C99" 'BEGIN { print k - d }')
DS_A50=$(med d.s.arrive50); KS_A50=$(med k.s.arrive50)
DS_A99=$(med d.s.arrive99); KS_A99=$(med k.s.arrive99)
AA_50=$(awk -v k="$KS_A50" -v d="$DS_A50" 'BEGIN { print k - d }')
AA_99=$(awk -v k="$KS_A99" -v d="$DS_A99" 'BEGIN { print k - d }')
RSS_GROWTH=$((AFTER_RSS - IDLE_RSS))

C1_CONNS=$(median <"$WORK/m.k.c1.conns"); C1_MAX=$(sort -n "$WORK/m.k.c1.conns" | tail -n 1)
C32_CONNS=$(median <"$WORK/m.k.c32.conns"); C32_MAX=$(sort -n "$WORK/m.k.c32.conns" | tail -n 1)
S_CONNS=$(median <"$WORK/m.k.s.conns"); S_MAX=$(sort -n "$WORK/m.k.s.conns" | tail -n 1)
C1_REQ=$(med k.c1.upstream_requests); C32_REQ=$(med k.c32.upstream_requests)
S_REQ=$(med k.s.upstream_requests)
C1_PEAK=$(sort -n "$WORK/m.k.c1.peak" | tail -n 1)
C32_PEAK=$(sort -n "$WORK/m.k.c32.peak" | tail -n 1)
S_PEAK=$(sort -n "$WORK/m.k.s.peak" | tail -n 1)
C1_CPU=$(awk -v c="$(med k.c1.cpu_ms)" -v n="$C1_REQ" 'BEGIN { printf "%.0f", n ? c * 1000 / n : 0 }')
C32_CPU=$(awk -v c="$(med k.c32.cpu_ms)" -v n="$C32_REQ" 'BEGIN { printf "%.0f", n ? c * 1000 / n : 0 }')

echo
echo "## Keypool benchmark, $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -sr), buildtype ${BUILDTYPE:-?}"
echo
echo "Medians of $REPS repetitions; each non-streamed run: ${WARMUP} s warm-up + ${SECONDS_PER_RUN} s recorded"
echo "(Anthropic rows: ${WARMUP} s + ${ANTHROPIC_SECONDS} s);"
echo "streams: $STREAMS concurrent × $CHUNKS chunks at $((INTERVAL_US / 1000)) ms, 1 warm-up + $STREAM_ROUNDS recorded rounds."
echo "Driver, mock upstream and Keypool share the machine. Times in ms."
echo
row "Metric" "Direct" "Keypool" "Added / ratio" "Target" "Met"
row "---" "---:" "---:" "---:" "---" "---"
row "Latency p50, c=1" "$(ms "$D1_50")" "$(ms "$K1_50")" "$(added_ms "$K1_50" "$D1_50")" "added ≤ 0.3" \
    "$(verdict "$A1_50" "<=" 300)"
row "Latency p99, c=1" "$(ms "$D1_99")" "$(ms "$K1_99")" "$(added_ms "$K1_99" "$D1_99")" "added ≤ 1.5" \
    "$(verdict "$A1_99" "<=" 1500)"
row "Latency p50, c=$HIGH_C" "$(ms "$D32_50")" "$(ms "$K32_50")" "$(added_ms "$K32_50" "$D32_50")" "—" ""
row "Latency p99, c=$HIGH_C" "$(ms "$D32_99")" "$(ms "$K32_99")" "$(added_ms "$K32_99" "$D32_99")" "—" ""
row "Requests/s, c=1" "$(printf '%.0f' "$D1_RPS")" "$(printf '%.0f' "$K1_RPS")" \
    "$(awk -v k="$K1_RPS" -v d="$D1_RPS" 'BEGIN { printf "%.3f×", k / d }')" "—" ""
row "Requests/s, c=$HIGH_C" "$(printf '%.0f' "$D32_RPS")" "$(printf '%.0f' "$K32_RPS")" "${RATIO}×" "≥ 0.2× direct" \
    "$(verdict "$RATIO" ">=" 0.2)"
row "Time to first chunk p50, $STREAMS streams" "$(ms "$DS_T50")" "$(ms "$KS_T50")" "$(added_ms "$KS_T50" "$DS_T50")" "—" ""
row "Time to first chunk p99, $STREAMS streams" "$(ms "$DS_T99")" "$(ms "$KS_T99")" "$(added_ms "$KS_T99" "$DS_T99")" "—" ""
row "Per-chunk delay p50, $STREAMS streams" "$(ms "$DS_C50")" "$(ms "$KS_C50")" "$(added_ms "$KS_C50" "$DS_C50")" "added ≤ 0.3" \
    "$(verdict "$AC_50" "<=" 300)"
row "Per-chunk delay p99, $STREAMS streams" "$(ms "$DS_C99")" "$(ms "$KS_C99")" "$(added_ms "$KS_C99" "$DS_C99")" "added ≤ 1.5" \
    "$(verdict "$AC_99" "<=" 1500)"
row "Per-chunk arrival p50, $STREAMS streams" "$(ms "$DS_A50")" "$(ms "$KS_A50")" "$(added_ms "$KS_A50" "$DS_A50")" "added ≤ 0.3" \
    "$(verdict "$AA_50" "<=" 300)"
row "Per-chunk arrival p99, $STREAMS streams" "$(ms "$DS_A99")" "$(ms "$KS_A99")" "$(added_ms "$KS_A99" "$DS_A99")" "added ≤ 1.5" \
    "$(verdict "$AA_99" "<=" 1500)"
# The Anthropic rows: a client and a provider dialect each, and a direct run
# against the mock in the provider's dialect.
AP="Anthropic → Anthropic (passthrough)"
AO="Anthropic client → OpenAI provider"
OA="OpenAI client → Anthropic provider"
# A row of added time: its label, the direct run's key, Keypool's key.
added_row () {
  row "$1" "$(ms "$(med "$2")")" "$(ms "$(med "$3")")" "$(added_ms "$(med "$3")" "$(med "$2")")" "—" ""
}
# A row of requests/s: its label, the direct rate, Keypool's key.
rate_row () {
  row "$1" "$(printf '%.0f' "$2")" "$(printf '%.0f' "$(med "$3")")" "$(ratio "$(med "$3")" "$2")" "—" ""
}
added_row "$AP: latency p50, c=1" ad.c1.p50 aa.c1.p50
added_row "$AP: latency p99, c=1" ad.c1.p99 aa.c1.p99
rate_row "$AP: requests/s, c=$HIGH_C" "$(med "ad.c$HIGH_C.rps")" "aa.c$HIGH_C.rps"
added_row "$AP: per-chunk delay p50, $STREAMS streams" ad.s.chunk50 aa.s.chunk50
added_row "$AP: per-chunk delay p99, $STREAMS streams" ad.s.chunk99 aa.s.chunk99
rate_row "$AO: requests/s, c=$HIGH_C" "$D32_RPS" "ao.c$HIGH_C.rps"
added_row "$AO: per-chunk delay p50, $STREAMS streams" od.s.chunk50 ao.s.chunk50
added_row "$AO: per-chunk delay p99, $STREAMS streams" od.s.chunk99 ao.s.chunk99
rate_row "$OA: requests/s, c=$HIGH_C" "$(med "ad.c$HIGH_C.rps")" "oa.c$HIGH_C.rps"
added_row "$OA: per-chunk delay p50, $STREAMS streams" ad.s.chunk50 oa.s.chunk50
added_row "$OA: per-chunk delay p99, $STREAMS streams" ad.s.chunk99 oa.s.chunk99
row "RSS idle (MB)" "" "$(mb "$IDLE_RSS")" "anon $(mb "$IDLE_ANON"), file $(mb "$IDLE_FILE"), PSS $(mb "$IDLE_PSS")" "≤ 10" \
    "$(verdict "$IDLE_RSS" "<=" 10240)"
row "RSS peak, VmHWM (MB)" "" "$(mb "$PEAK_RSS")" "" "—" ""
row "RSS 2 s after load (MB)" "" "$(mb "$AFTER_RSS")" \
    "$(awk -v g="$RSS_GROWTH" 'BEGIN { printf "%+.1f", g / 1024 }') vs idle (anon $(mb "$AFTER_ANON"), file $(mb "$AFTER_FILE"))" \
    "≤ idle + 5" "$(verdict "$RSS_GROWTH" "<=" 5120)"
row "Upstream TCP connects, c=1 (per run)" "" "$C1_CONNS (max $C1_MAX; $C1_REQ requests)" "peak open $C1_PEAK" "≤ 1" \
    "$(verdict "$C1_MAX" "<=" 1)"
row "Upstream TCP connects, c=$HIGH_C (per run)" "" "$C32_CONNS (max $C32_MAX; $C32_REQ requests)" "peak open $C32_PEAK" "≤ $HIGH_C" \
    "$(verdict "$C32_MAX" "<=" "$HIGH_C")"
row "Upstream TCP connects, $STREAMS streams (per run)" "" "$S_CONNS (max $S_MAX; $S_REQ streams)" "peak open $S_PEAK" "≤ $STREAMS" \
    "$(verdict "$S_MAX" "<=" "$STREAMS")"
echo
echo "Keypool CPU per non-streamed request: ${C1_CPU} µs at c=1, ${C32_CPU} µs at c=$HIGH_C."
echo "Keypool fds: $IDLE_FDS idle, $AFTER_FDS after the load; threads: $IDLE_THREADS idle, $AFTER_THREADS after;"
echo "client sockets left in CLOSE-WAIT on Keypool's port: $CLOSE_WAIT."
echo "Correctness (all runs): errors $ERRORS, malformed answers $BAD_BYTES, usage-only chunks leaked $USAGE_LEAKS,"
echo "chunked non-streamed answers $CHUNKED_ANSWERS, connections closed by the server $CLIENT_RECONNECTS."
