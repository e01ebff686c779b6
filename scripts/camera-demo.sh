#!/usr/bin/env bash
# The camera demo: one publisher of 1080p RGB frames at 30 fps and three subscriber processes
# reading them in place in shared memory, for about 10 seconds:
#   stats       frame-stats: rate, latency, losses, checksums
#   stats-slow  frame-stats --delay-ms 100: too slow on purpose; it must lose frames (counted)
#               without slowing the publisher or the others
#   sink        frame-sink --ppm: a PPM snapshot every 30 frames
# Then a summary: frames sent and received, latency, losses, and the shared memory used
# against what copying every frame to three processes would cost.
#
# usage: scripts/camera-demo.sh [--seconds N] [--keep]     (build first: build/bin)
#   --seconds N   run for N seconds (default 10)
#   --keep        keep the temporary directory (logs, summaries, snapshots) and print it
# Environment: SHMBUS_BIN (default build/bin), SHMBUS_SHM_DIR (default /dev/shm).
#
# Leaves nothing behind: its own domain and runtime directory, checked after the run. Exits
# non-zero if the publisher or a subscriber failed, a checksum failed, frames were skipped,
# or anything was left in the shm directory. Ctrl-C stops everything cleanly.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

seconds=10
keep=0
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "camera-demo: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
case $seconds in ''|*[!0-9]*|0) echo "camera-demo: --seconds wants a positive number" >&2; exit 2 ;; esac

bin=${SHMBUS_BIN:-build/bin}
config=examples/camera/camera.json
shm=${SHMBUS_SHM_DIR:-/dev/shm}
fps=30
count=$((fps * seconds))
size=1920x1080
slow_ms=100
every=30
domain=camdemo$$

for p in camera-pub frame-sink frame-stats; do
  if [ ! -x "$bin/$p" ]; then
    echo "camera-demo: $bin/$p is missing: build first (scripts/build.sh)" >&2
    exit 1
  fi
done

work=$(mktemp -d /tmp/camera-demo.XXXXXX)
export SHMBUS_RUNTIME_DIR=$work/run
mkdir -p "$SHMBUS_RUNTIME_DIR" "$work/snapshots"
common=(--config "$config" --domain "$domain")
pids=()
tail_pid=
problems=()

leftovers() { # the domain's files still in the shm directory
  find "$shm" -maxdepth 1 -name "shmbus.$domain.*" 2>/dev/null
}

finish() { # finish STATUS: check for leftovers, remove the work dir, exit
  local status=$1 left
  [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null && wait "$tail_pid" 2>/dev/null
  left=$(leftovers)
  if [ -n "$left" ]; then
    echo "camera-demo: FAIL: left behind in $shm:" >&2
    echo "$left" | sed 's/^/  /' >&2
    echo "$left" | xargs rm -f
    status=1
  fi
  if [ -e "$SHMBUS_RUNTIME_DIR/shmbus.$domain" ]; then
    echo "camera-demo: FAIL: runtime directory $SHMBUS_RUNTIME_DIR/shmbus.$domain left behind" >&2
    status=1
  fi
  if [ "$keep" = 1 ]; then
    echo "camera-demo: logs, summaries and snapshots kept in $work"
  else
    rm -rf "$work"
  fi
  exit "$status"
}

stop_all() { # stop every child: SIGTERM (they release what they hold), SIGKILL after 5 s
  local p
  if [ -n "$tail_pid" ]; then kill "$tail_pid" 2>/dev/null; wait "$tail_pid" 2>/dev/null; tail_pid=; fi
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for _ in $(seq 50); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
}

interrupted() {
  trap '' INT TERM
  echo
  echo "camera-demo: interrupted: stopping the publisher and the subscribers" >&2
  stop_all
  finish 130
}
trap interrupted INT TERM

# wait_for PID TIMEOUT_S: its exit status, or 124 after killing it at the timeout
wait_for() {
  local pid=$1 left=$(($2 * 10))
  while kill -0 "$pid" 2>/dev/null && [ $left -gt 0 ]; do sleep 0.1; left=$((left - 1)); done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 124
  fi
  wait "$pid"
}

# value FILE KEY: a number from a JSON summary ("" if absent)
value() { sed -n "s/.*\"$2\": *\([0-9.]*\).*/\1/p" "$1" 2>/dev/null | head -n 1; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }

echo "camera-demo: domain $domain, ${size} rgb24 at $fps fps for $seconds s ($count frames)"
echo "camera-demo: subscribers: stats, stats-slow (holds each frame $slow_ms ms), sink (PPM every $every frames)"
echo

"$bin/frame-stats" "${common[@]}" --name stats --summary "$work/stats.json" \
  >"$work/stats.out" 2>"$work/stats.err" &
pids+=($!); stats_pid=$!
"$bin/frame-stats" "${common[@]}" --name stats-slow --delay-ms "$slow_ms" \
  --summary "$work/slow.json" >"$work/slow.out" 2>"$work/slow.err" &
pids+=($!); slow_pid=$!
"$bin/frame-sink" "${common[@]}" --name sink --ppm "$work/snapshots" --every "$every" \
  --summary "$work/sink.json" >"$work/sink.out" 2>"$work/sink.err" &
pids+=($!); sink_pid=$!
"$bin/camera-pub" "${common[@]}" --size "$size" --format rgb24 --fps "$fps" --count "$count" \
  --wait-subs 3 --summary "$work/pub.json" >"$work/pub.out" 2>"$work/pub.err" &
pids+=($!); pub_pid=$!

# live: the publisher's and both frame-stats' lines, once a second
tail -q -n +1 -F "$work/pub.err" "$work/stats.out" "$work/slow.out" 2>/dev/null &
tail_pid=$!

# halfway through, a look from the outside with shmbus-monitor, if it is built
monitor="(shmbus-monitor is not built: no snapshot)"
half=$((seconds / 2 + 1))
for _ in $(seq $((half * 10))); do kill -0 "$pub_pid" 2>/dev/null || break; sleep 0.1; done
if [ -x "$bin/shmbus-monitor" ] && kill -0 "$pub_pid" 2>/dev/null; then
  if monitor=$(timeout 10 "$bin/shmbus-monitor" --once --domain "$domain" 2>&1); then :
  elif monitor=$(timeout 10 "$bin/shmbus-monitor" --once "$domain" 2>&1); then :
  else monitor="(shmbus-monitor --once failed: $monitor)"
  fi
fi

wait_for "$pub_pid" $((seconds + 60)); pub_status=$?
wait_for "$stats_pid" 15; stats_status=$?
wait_for "$slow_pid" 15; slow_status=$?
wait_for "$sink_pid" 15; sink_status=$?
pids=()
sleep 0.3
kill "$tail_pid" 2>/dev/null; wait "$tail_pid" 2>/dev/null; tail_pid=

for t in pub:$pub_status stats:$stats_status stats-slow:$slow_status sink:$sink_status; do
  name=${t%%:*} status=${t#*:}
  if [ "$status" != 0 ]; then
    problems+=("$name exited with status $status$([ "$status" = 124 ] && echo ' (timed out)')")
    log=$work/$([ "$name" = pub ] && echo pub || ([ "$name" = stats-slow ] && echo slow || echo "$name")).err
    [ -s "$log" ] && sed "s/^/    $name: /" "$log" | tail -n 5 >&2
  fi
done

sent=$(value "$work/pub.json" sent)
skipped=$(value "$work/pub.json" skipped)
pub_fps=$(value "$work/pub.json" fps)
msg_bytes=$(value "$work/pub.json" message_bytes)
frame_bytes=$(value "$work/pub.json" frame_bytes)
pool_bytes=$(value "$work/pub.json" pool_bytes)
block_size=$(value "$work/pub.json" block_size)
blocks=$(value "$work/pub.json" blocks)
peak=$(value "$work/pub.json" peak_blocks)
snapshots=$(find "$work/snapshots" -name '*.ppm' | wc -l)
[ -z "$sent" ] && problems+=("the publisher wrote no summary")
[ -n "$skipped" ] && [ "$skipped" != 0 ] && problems+=("the publisher skipped $skipped frames (pool full)")

echo
echo "================================ camera demo summary ================================"
printf "frames sent          %s of %s (%s fps)\n" "${sent:-?}" "$count" "${pub_fps:-?}"
printf "%-12s %9s %6s %9s %9s %8s %8s %9s %9s\n" subscriber received lost expired dropped \
  overflow checksum "p50 ms" "p99 ms"
for s in stats:stats slow:stats-slow sink:sink; do
  f=$work/${s%%:*}.json name=${s#*:}
  if [ ! -s "$f" ]; then
    problems+=("$name wrote no summary")
    printf "%-12s %9s\n" "$name" "(none)"
    continue
  fi
  p50=$(value "$f" p50_us) p99=$(value "$f" p99_us)
  printf "%-12s %9s %6s %9s %9s %8s %8s %9s %9s\n" "$name" "$(value "$f" received)" \
    "$(value "$f" lost)" "$(value "$f" expired)" "$(value "$f" dropped)" \
    "$(value "$f" overflow)" "$(value "$f" checksum_errors)" \
    "$([ -n "$p50" ] && awk -v v="$p50" 'BEGIN{printf "%.3f", v/1000}' || echo -)" \
    "$([ -n "$p99" ] && awk -v v="$p99" 'BEGIN{printf "%.3f", v/1000}' || echo -)"
  bad=$(value "$f" checksum_errors)
  [ -n "$bad" ] && [ "$bad" != 0 ] && problems+=("$name saw $bad checksum errors")
done
echo "(latency: from capture to receipt in the subscriber; the sink writes a snapshot every $every frames: $snapshots written)"
slow_lost=$(value "$work/slow.json" lost)
stats_lost=$(value "$work/stats.json" lost)
echo
echo "slow subscriber      lost ${slow_lost:-?} frames, all counted; the publisher still sent ${sent:-?}" \
  "and the normal subscriber lost ${stats_lost:-?}"
[ "${slow_lost:-0}" = 0 ] && echo "  note: the slow subscriber lost nothing: it kept up after all (fast machine?)"
[ -n "$stats_lost" ] && [ "$stats_lost" != 0 ] &&
  echo "  warning: the normal subscriber lost frames too: the machine is overloaded"
sink_lost=$(value "$work/sink.json" lost)
[ -n "$sink_lost" ] && [ "$sink_lost" != 0 ] &&
  echo "  note: the sink holds a frame while it writes a $(mb "${frame_bytes:-0}") snapshot to" \
    "disk; a write that outlasts the topic's history (4 frames) costs it frames, counted"

if [ -n "$msg_bytes" ] && [ -n "$pool_bytes" ]; then
  copy_rate=$(awk -v b="$msg_bytes" -v f="$fps" 'BEGIN { printf "%.0f", 3 * b * f }')
  echo
  echo "memory               one frame is $(mb "$frame_bytes") of pixels ($(mb "$msg_bytes") with its header)"
  echo "  shmbus             pool \"frames\": $(mib "$pool_bytes") of shared memory reserved" \
    "($blocks blocks of $(mib "$block_size")); at most $peak blocks ($(mib $((peak * block_size))))" \
    "in use at once"
  echo "                     bytes copied per second to the subscribers: 0 (each frame is" \
    "written once, in place, and read in place by all three)"
  echo "  copying instead    3 x $(mb "$msg_bytes") x $fps fps = $(mb "$copy_rate")/s copied" \
    "($(mb $((copy_rate * 2)))/s through a socket, which copies twice)"
  echo "                     and at least 4 frame buffers ($(mb $((4 * msg_bytes)))): one per" \
    "process, more to queue frames for the slow one"
fi
echo
echo "monitor snapshot (shmbus-monitor --once, halfway through):"
printf '%s\n' "$monitor" | head -n 60 | sed 's/^/  /'
[ "$(printf '%s\n' "$monitor" | wc -l)" -gt 60 ] && echo "  ..."
echo "====================================================================================="

left=$(leftovers)
[ -z "$left" ] && echo "shm directory        nothing of domain $domain left in $shm"
if [ ${#problems[@]} -gt 0 ]; then
  echo
  for p in "${problems[@]}"; do echo "camera-demo: FAIL: $p" >&2; done
  finish 1
fi
echo "camera-demo: OK"
finish 0
