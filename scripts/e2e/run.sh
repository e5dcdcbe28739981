#!/usr/bin/env bash
# End-to-end run of deepfake-guard in a real Janus VideoRoom with real clients (headless Debian Chromium running the
# demo page web/ on Janus's own janus.js), inside a private network namespace (lo + e2e0 holding 127.0.0.2/32).
#
#   bash scripts/e2e/run.sh test     scripted call, ~60-75 s: alice (genuine), bob (viewer), mallory (lip-sync fake,
#                                    forges guard messages) for ~20 s, then carol (genuine) for ~15 s;
#                                    writes $WORK/result.json, $WORK/bob.png, $WORK/bob-mallory.png; exit 1 on a failed check
#   bash scripts/e2e/run.sh demo     alice + mallory publish, bob views, for DEMO_SECONDS; tails the bot's log,
#                                    saves $WORK/bob.png every few seconds
#   bash scripts/e2e/run.sh room     benchmark: ROOM_PUBLISHERS genuine publishers for ROOM_SECONDS; the bot's CPU
#                                    time and memory sampled every 0.5 s into $WORK/bot-usage.csv, its /metrics at
#                                    the end in $WORK/metrics.txt (scripts/bench_room.sh runs it with 1, 2, 4)
#
# Env: BOT (default target/release/deepfake-guard; a missing bot is tolerated: the pages run without a guard)
#      VCODEC=vp8|h264 (room 4321 / 4322)   WORK (default out/e2e/<mode>-<time>)   KEY (default $WORK/guard.key)
#      GUARD_PUB (pin this base64 key instead of asking `$BOT key`; empty with STANDIN_GUARD: trust on first use)
#      BOT_ARGS (extra arguments for `join`)
#      STANDIN_GUARD=1: no bot; a Chromium page (scripts/e2e/standin/) joins as "Deepfake Guard" and sends messages
#                  signed with the PUBLIC RFC 8032 test key (mallory -> alert after 6 s): checks the page, not the detector
#      RESTART=1 (test: kill Janus ~12 s into mallory's stay, start it again 2 s later)   CLIPS (default .cache/e2e-clips)
#      timings: BOT_LEAD_S 3, OPEN_GAP_S, MALLORY_S, CAROL_S, RESTART_AFTER_S, RESTART_GAP_S, DEMO_SECONDS 60, SHOT_EVERY_S
#      PROMETHEUS=1 (test: the real Prometheus scrapes the bot every 100 ms with deploy/prometheus/prometheus.yml and
#                  rules.yml; at the end $WORK/prometheus.json holds the answers to the queries the e2e test checks)
#      NOT_JUDGED=1 (test: first, "dave" publishes with the camera off (audio only) and "erin" in VP9; each must be
#                  shown "not judged" on bob's page and in the bot's /metrics within 10 s of publishing; then they leave)
#      FAKE_CAPTURE=1 (publishers use Chromium's fake camera + microphone on the .y4m + .wav instead of playing the .webm)
#      NO_NETNS=1 (demo on a machine with a real interface: Janus and the page on 0.0.0.0, ICE on ICE_IP;
#                  people open http://HOST:8000/?room=4321&name=you&key=...; see the note printed at start)
set -u
MODE="${1:-test}"
case "$MODE" in test|demo|room) ;; *) echo "usage: run.sh test|demo|room" >&2; exit 2 ;; esac
E2E="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$E2E/../.." && pwd)"
die() { echo "run.sh: $*" >&2; exit 2; }

if [[ -z "${IN_NETNS:-}" ]]; then
  # ---------------------------------------------------------------- outside the namespace: inputs, key, clips
  cd "$ROOT"
  export VCODEC="${VCODEC:-vp8}"
  case "$VCODEC" in vp8) ROOM=4321 ;; h264) ROOM=4322 ;; *) die "VCODEC must be vp8 or h264" ;; esac
  export ROOM
  export WORK="${WORK:-$ROOT/out/e2e/$MODE-$VCODEC-$(date +%Y%m%d-%H%M%S)}"
  mkdir -p "$WORK" && WORK="$(cd "$WORK" && pwd)"
  export BOT="${BOT:-$ROOT/target/release/deepfake-guard}"
  [[ "$BOT" = /* ]] || BOT="$ROOT/$BOT"
  export KEY="${KEY:-$WORK/guard.key}"
  export CLIPS="${CLIPS:-$ROOT/.cache/e2e-clips}"
  for c in janus chromium node curl unshare ip; do command -v "$c" > /dev/null || die "$c not found: run 'bash scripts/setup.sh'"; done
  [[ "${PROMETHEUS:-0}" == 1 ]] && { command -v prometheus > /dev/null || die "prometheus not found: run 'bash scripts/setup.sh'"; }
  [[ -d "$E2E/node_modules/playwright-core" ]] || die "scripts/e2e/node_modules/playwright-core missing: run 'bash scripts/setup.sh' (or 'npm ci' in scripts/e2e)"
  [[ -n "${NO_NETNS:-}" || $(id -u) -eq 0 ]] || die "needs root for 'unshare --net' (or NO_NETNS=1)"
  bash "$E2E/clips.sh" "$CLIPS" > /dev/null || die "could not make the clips (scripts/e2e/clips.sh $CLIPS)"
  if [[ "${STANDIN_GUARD:-0}" == 1 ]]; then
    # a page signing with the PUBLIC RFC 8032 test key stands in for the bot (tests the page and the harness only)
    BOT=/nonexistent/standin; GUARD_PUB="${GUARD_PUB-11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=}"
    echo "run.sh: STANDIN_GUARD=1: no bot; a stand-in guard page signs with the public test key" >&2
  elif [[ -z "${GUARD_PUB:-}" ]]; then
    if [[ -x "$BOT" ]]; then
      GUARD_PUB="$("$BOT" key --key "$KEY" 2> "$WORK/bot-key.log" | tail -n 1)" || GUARD_PUB=""
      [[ "$GUARD_PUB" =~ ^[A-Za-z0-9+/]{43}=$ ]] || { echo "run.sh: WARNING: '$BOT key --key $KEY' gave no public key (see $WORK/bot-key.log): pages use trust on first use" >&2; GUARD_PUB=""; }
    else
      echo "run.sh: WARNING: no bot at $BOT: running the call without a guard (pages use trust on first use)" >&2
    fi
  fi
  export GUARD_PUB
  echo "e2e $MODE: codec $VCODEC, room $ROOM, work $WORK, guard key ${GUARD_PUB:-none (TOFU)}"
  if [[ -n "${NO_NETNS:-}" ]]; then exec env IN_NETNS=none bash "${BASH_SOURCE[0]}" "$MODE"; fi
  exec env IN_NETNS=1 unshare --net -- bash "${BASH_SOURCE[0]}" "$MODE"
fi

# -------------------------------------------------------------------- inside the namespace (or NO_NETNS)
ulimit -c 0   # Janus 1.1.2 can dump a large core when killed with live sessions
cd "$ROOT"
export E2E BASE="http://127.0.0.1:8000/"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null; done
  if [[ -n "${BOT_PID:-}" ]] && kill -0 "$BOT_PID" 2> /dev/null; then
    kill -INT "$BOT_PID" 2> /dev/null
    for _ in $(seq 30); do kill -0 "$BOT_PID" 2> /dev/null || break; sleep 0.1; done
    kill -KILL "$BOT_PID" 2> /dev/null
  fi
  bash "$E2E/janus-ctl.sh" stop > /dev/null 2>&1
  for p in "${PIDS[@]}"; do wait "$p" 2> /dev/null; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ "$IN_NETNS" == 1 ]]; then
  ip link set lo up || die "cannot bring lo up in the namespace"
  # Janus never gathers ICE candidates on IFF_LOOPBACK interfaces: a non-loopback one holds a loopback-range address
  ip link add e2e0 type ifb 2> /dev/null || ip link add e2e0 type dummy || die "cannot create interface e2e0 (ifb/dummy)"
  ip addr add 127.0.0.2/32 dev e2e0 && ip link set e2e0 up || die "cannot configure e2e0"
  ICE_IP=127.0.0.2; BIND=127.0.0.1
  JANUS_BIND=127.0.0.1 bash "$E2E/janus-conf.sh" "$WORK/janus-conf" > /dev/null || die "janus-conf.sh failed"
else
  ICE_IP="${ICE_IP:-$(hostname -I 2> /dev/null | awk '{print $1}')}"; BIND=0.0.0.0
  [[ -n "$ICE_IP" ]] || die "NO_NETNS=1: set ICE_IP to this machine's address"
  for port in 8000 8088 8188; do
    (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null && die "port $port is in use already (another Janus or web server?)"
  done
  JANUS_BIND=0.0.0.0 JANUS_ICE_ENFORCE="" bash "$E2E/janus-conf.sh" "$WORK/janus-conf" > /dev/null || die "janus-conf.sh failed"
fi

T0=$(date +%s%N); el() { printf '%5.1fs' "$(( ($(date +%s%N) - T0) / 1000000 ))e-3"; }
bash "$E2E/janus-ctl.sh" start || die "Janus did not come up"
echo "[$(el)] janus ready"

# the page, next to Janus's own janus.js + adapter (Debian) and the project's verifier module
rm -rf "$WORK/web" && mkdir -p "$WORK/web"
for f in "$ROOT"/web/*; do ln -s "$f" "$WORK/web/"; done
ln -s "$ROOT/plugin-api/js/deepfake-guard.mjs" "$WORK/web/deepfake-guard.mjs"
ln -s /usr/share/javascript "$WORK/web/javascript"
ln -s "$CLIPS" "$WORK/web/clips"
[[ "${STANDIN_GUARD:-0}" == 1 ]] && ln -s "$E2E/standin" "$WORK/web/standin"
python3 "$E2E/serve.py" "$WORK/web" "$BIND" 8000 > "$WORK/web.log" 2>&1 & PIDS+=($!)
ok=""
for _ in $(seq 200); do
  curl -sf -m 1 http://127.0.0.1:8000/index.html > /dev/null && curl -sf -m 1 http://127.0.0.1:8000/deepfake-guard.mjs > /dev/null \
    && curl -sf -m 1 http://127.0.0.1:8000/javascript/janus-gateway/janus.js > /dev/null && { ok=1; break; }
  sleep 0.05
done
[[ -n "$ok" ]] || { cat "$WORK/web.log" >&2; die "the web server did not come up on 127.0.0.1:8000 (or a file is missing)"; }
echo "[$(el)] web server ready: http://127.0.0.1:8000/?room=$ROOM&name=you${GUARD_PUB:+&key=$(python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1],safe=""))' "$GUARD_PUB")}"

BOT_RUNNING=0
if [[ -x "$BOT" ]]; then
  # shellcheck disable=SC2086
  "$BOT" join --janus ws://127.0.0.1:8188 --room "$ROOM" --ice-ip "$ICE_IP" --key "$KEY" ${BOT_ARGS:-} > "$WORK/bot.log" 2>&1 &
  BOT_PID=$!
  sleep "${BOT_LEAD_S:-3}"
  if kill -0 "$BOT_PID" 2> /dev/null; then BOT_RUNNING=1; echo "[$(el)] bot running (pid $BOT_PID, log $WORK/bot.log)"
  else echo "[$(el)] WARNING: the bot exited at once (see $WORK/bot.log):" >&2; tail -n 5 "$WORK/bot.log" >&2; fi
else
  [[ "${STANDIN_GUARD:-0}" == 1 ]] && echo "[$(el)] stand-in guard page instead of the bot" || echo "[$(el)] no bot ($BOT missing): the call runs without a guard"
fi
export BOT_RUNNING STANDIN_GUARD="${STANDIN_GUARD:-0}"

if [[ "$MODE" == room && "$BOT_RUNNING" == 1 ]]; then
  # t_ms, CPU ticks (user + system), RSS kB, peak RSS kB of the bot, every 0.5 s
  ( hz=$(getconf CLK_TCK); echo "t_ms,cpu_ticks,rss_kb,hwm_kb,hz=$hz" > "$WORK/bot-usage.csv"
    while kill -0 "$BOT_PID" 2> /dev/null; do
      read -r -a st < "/proc/$BOT_PID/stat" 2> /dev/null || break
      rss=$(awk '/^VmRSS/{print $2}' "/proc/$BOT_PID/status" 2> /dev/null); hwm=$(awk '/^VmHWM/{print $2}' "/proc/$BOT_PID/status" 2> /dev/null)
      echo "$(( $(date +%s%N) / 1000000 )),$(( st[13] + st[14] )),$rss,$hwm" >> "$WORK/bot-usage.csv"
      sleep 0.5
    done ) & PIDS+=($!)
fi

PROM_PID=""
if [[ "${PROMETHEUS:-0}" == 1 && "$BOT_RUNNING" == 1 ]]; then
  # The shipped scrape job and rules, scraping every 100 ms (rules evaluated every second).
  mkdir -p "$WORK/prometheus"
  cp "$ROOT/deploy/prometheus/rules.yml" "$WORK/prometheus/rules.yml"
  sed -e 's/^\(  scrape_interval:\).*/\1 100ms\n  scrape_timeout: 90ms/' -e 's/^\(  evaluation_interval:\).*/\1 1s/' \
    "$ROOT/deploy/prometheus/prometheus.yml" > "$WORK/prometheus/prometheus.yml"
  prometheus --config.file="$WORK/prometheus/prometheus.yml" --storage.tsdb.path="$WORK/prometheus/data" \
    --web.listen-address=127.0.0.1:9090 > "$WORK/prometheus.log" 2>&1 & PROM_PID=$!; PIDS+=($PROM_PID)
  ok=""
  for _ in $(seq 100); do curl -sf -m 1 http://127.0.0.1:9090/-/ready > /dev/null && { ok=1; break; }; sleep 0.1; done
  [[ -n "$ok" ]] && echo "[$(el)] prometheus ready (scraping the bot every 100 ms; log $WORK/prometheus.log)" \
    || { tail -n 5 "$WORK/prometheus.log" >&2; die "prometheus did not come up on 127.0.0.1:9090"; }
fi

if [[ "$MODE" == demo ]]; then
  [[ "$BOT_RUNNING" == 1 ]] && { tail -n +1 -f --pid="$BOT_PID" "$WORK/bot.log" | sed -u 's/^/  bot| /' & PIDS+=($!); }
  if [[ "$IN_NETNS" != 1 ]]; then
    echo "NO_NETNS: open http://$ICE_IP:8000/?room=$ROOM&name=YOURNAME (the browser needs WebCrypto Ed25519 and a camera:"
    echo "  a plain-http page on a remote host is not a secure context; tunnel it, e.g. ssh -L 8000:localhost:8000 -L 8188:localhost:8188,"
    echo "  then open http://localhost:8000/?room=$ROOM&name=YOURNAME, or start chromium with --unsafely-treat-insecure-origin-as-secure=http://$ICE_IP:8000)"
  fi
fi

if [[ "$MODE" == demo ]]; then LIMIT=$(( ${DEMO_SECONDS:-60} + 90 )); elif [[ "$MODE" == room ]]; then LIMIT=$(( ${ROOM_SECONDS:-40} + 120 )); else LIMIT=180; fi
NODE_PATH="$E2E/node_modules" timeout -k 5 "${DRIVER_TIMEOUT_S:-$LIMIT}" node "$E2E/driver.js" "$MODE"
rc=$?
[[ $rc -eq 124 ]] && echo "run.sh: the driver ran past its time limit" >&2
if [[ "$BOT_RUNNING" == 1 ]]; then
  kill -0 "$BOT_PID" 2> /dev/null || echo "run.sh: WARNING: the bot exited during the run (see $WORK/bot.log)" >&2
fi
if [[ "$MODE" == room && "$BOT_RUNNING" == 1 ]]; then
  curl -sf -m 2 http://127.0.0.1:9464/metrics > "$WORK/metrics.txt" || echo "run.sh: WARNING: could not read the bot's /metrics" >&2
fi
if [[ -n "$PROM_PID" ]]; then
  sleep 0.5   # one more scrape and rule evaluation after the call
  python3 "$E2E/prom-query.py" http://127.0.0.1:9090 "$WORK/prometheus.json" \
    'up{job="deepfake-guard"}' \
    'count_over_time(up{job="deepfake-guard"}[10m])' \
    'min_over_time(up{job="deepfake-guard"}[10m])' \
    'avg_over_time(up{job="deepfake-guard"}[10m])' \
    'min_over_time(max_over_time(up{job="deepfake-guard"}[1s])[10m:100ms])' \
    'max_over_time(deepfake_guard_participants[10m])' \
    'deepfake_guard_participants' \
    'max_over_time(deepfake_guard_participant_states{state="alert"}[10m])' \
    'deepfake_guard_verdicts_total{state="alert"}' \
    'deepfake_guard_alerts_total' \
    'deepfake_guard_sfu_joined' \
    'min_over_time(deepfake_guard_sfu_joined[10m])' \
    'deepfake_guard_sfu_reconnects_total' \
    'deepfake_guard_video_frames_analysed_total' \
    'deepfake_guard_datachannel_messages_sent_total' \
    'max_over_time(ALERTS{alertname="DeepfakeAlertRaised",alertstate="firing"}[10m])' \
    'histogram_quantile(0.5, sum by (le, stage) (deepfake_guard_stage_duration_seconds_bucket))' \
    'histogram_quantile(0.95, sum by (le) (deepfake_guard_frame_to_verdict_seconds_bucket))' \
    'max_over_time(process_resident_memory_bytes{job="deepfake-guard"}[10m])' \
    'sum by (reason) (deepfake_guard_video_frames_dropped_total)' \
    'max_over_time(deepfake_guard_participants_not_judged{reason="camera-off"}[10m])' \
    'max_over_time(deepfake_guard_participants_not_judged{reason="unsupported-codec"}[10m])' \
    'max_over_time(deepfake_guard_participant_states{state="no-face"}[10m])' \
    && echo "[$(el)] prometheus answers: $WORK/prometheus.json" || echo "run.sh: WARNING: could not query prometheus" >&2
  grep -c -- '-> ALERT' "$WORK/bot.log" > "$WORK/bot-alert-verdicts.txt"
fi
echo "[$(el)] done (exit $rc): $WORK/result.json, $WORK/bob.png; logs: bot.log janus.*.log pages.log web.log"
exit $rc
