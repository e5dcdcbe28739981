#!/usr/bin/env bash
# Start / stop the harness's Janus (config $WORK/janus-conf, pid in $WORK/janus.pid, logs $WORK/janus.N.log).
# Usage: janus-ctl.sh start|stop      (env: WORK; JANUS_WAIT_S=10; JANUS_DEBUG=4; JANUS_STOP_SIGNAL=KILL)
# start: returns once http://127.0.0.1:8088/janus/info answers (exit 1 with a message after JANUS_WAIT_S)
# stop:  kills the recorded pid only (JANUS_STOP_SIGNAL, default KILL = a crash), waits until it is gone.
set -u
W="${WORK:?WORK not set}"
PIDF="$W/janus.pid"
case "${1:-}" in
start)
  ulimit -c 0   # a killed Janus with live sessions can dump a 100 MB core
  n=1; while [[ -e "$W/janus.$n.log" ]]; do n=$((n + 1)); done
  janus -F "$W/janus-conf" -C "$W/janus-conf/janus.jcfg" -o -D -d "${JANUS_DEBUG:-4}" -L "$W/janus.$n.log" -N \
    > "$W/janus.$n.stderr" 2>&1 < /dev/null &
  echo $! > "$PIDF"
  for ((i = 0; i < ${JANUS_WAIT_S:-10} * 20; i++)); do
    if curl -sf -m 1 http://127.0.0.1:8088/janus/info > /dev/null; then echo "janus up (pid $(cat "$PIDF"), log $W/janus.$n.log)"; exit 0; fi
    kill -0 "$(cat "$PIDF")" 2> /dev/null || break
    sleep 0.05
  done
  echo "janus-ctl: Janus did not come up (see $W/janus.$n.log and $W/janus.$n.stderr):" >&2
  tail -n 15 "$W/janus.$n.log" "$W/janus.$n.stderr" >&2 2> /dev/null
  exit 1 ;;
stop)
  [[ -s "$PIDF" ]] || exit 0
  p=$(cat "$PIDF")
  kill "-${JANUS_STOP_SIGNAL:-KILL}" "$p" 2> /dev/null
  for ((i = 0; i < 100; i++)); do kill -0 "$p" 2> /dev/null || break; sleep 0.05; done
  kill -0 "$p" 2> /dev/null && { kill -KILL "$p" 2> /dev/null; sleep 0.2; }
  rm -f "$PIDF"
  echo "janus stopped (pid $p)" ;;
*) echo "usage: janus-ctl.sh start|stop" >&2; exit 2 ;;
esac
