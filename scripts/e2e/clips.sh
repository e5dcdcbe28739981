#!/usr/bin/env bash
# Make the media the e2e publishers send, once (cached):
#   OUTDIR/alice.{y4m,wav,webm}    genuine (held-out face grace_hopper, audio in sync)
#   OUTDIR/mallory.{y4m,wav,webm}  lip-sync fake: the audio is 400 ms late against the lips
#   OUTDIR/carol.{y4m,wav,webm}    a second genuine clip (another face, seed and text)
# The pages publish the .webm (VP8 + Opus, high quality), played by a media element: its audio and video stay in
# step under CPU load, as a real camera's do. The .y4m + .wav feed Chromium's fake camera and microphone instead
# (FAKE_CAPTURE=1 in the harness), whose file reader falls behind the audio for good after every CPU stall.
# Usage: bash scripts/e2e/clips.sh OUTDIR     (default OUTDIR: .cache/e2e-clips)
# Knobs: CLIP_SECONDS (40), CLIP_W x CLIP_H (640x360), CLIP_FPS (25), MALLORY_OFFSET_MS (400),
#        ALICE_FACE / MALLORY_FACE / CAROL_FACE (face ids from scripts/faces/sources.json).
# The y4m is trimmed by one frame (--y4m-trim 1): Chromium's fake camera sends frame 0 twice at every wrap, so a
# trimmed file loops in step with the wav (see /work/shared/recipes/NOTES.md). A clip is remade only when its
# parameters change (OUTDIR/NAME.args). Needs the venv of scripts/setup.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${1:-$ROOT/.cache/e2e-clips}"
mkdir -p "$OUT"
PY="$ROOT/.venv/bin/python"
[[ -x "$PY" ]] || { echo "clips.sh: $PY not found: run 'bash scripts/setup.sh' first" >&2; exit 1; }
SECS="${CLIP_SECONDS:-40}"; W="${CLIP_W:-640}"; H="${CLIP_H:-360}"; FPS="${CLIP_FPS:-25}"

clip() { # name face seed offset_ms [extra talkgen args...]
  local name="$1" face="$2" seed="$3" off="$4"; shift 4
  local args=(--face "$face" --seconds "$SECS" --seed "$seed" --width "$W" --height "$H" --fps "$FPS"
              --offset-ms "$off" "$@")
  local sig="${args[*]}"
  if [[ -s "$OUT/$name.y4m" && -s "$OUT/$name.wav" && -f "$OUT/$name.args" && "$(cat "$OUT/$name.args")" == "$sig" ]]; then
    echo "clips: $name cached ($OUT/$name.y4m)" >&2; webm "$name"; return 0
  fi
  echo "clips: making $name: $sig" >&2
  rm -f "$OUT/$name.y4m" "$OUT/$name.wav" "$OUT/$name.json" "$OUT/$name.args"
  nice -n 5 "$PY" "$ROOT/scripts/talkgen.py" "${args[@]}" --y4m "$OUT/$name.y4m.part" --y4m-trim 1 \
      --wav "$OUT/$name.wav.part" --meta "$OUT/$name.json" --quiet
  mv "$OUT/$name.y4m.part" "$OUT/$name.y4m"; mv "$OUT/$name.wav.part" "$OUT/$name.wav"
  echo "$sig" > "$OUT/$name.args"
  rm -f "$OUT/$name.webm"
  webm "$name"
}

webm() { # name: the y4m + wav as one file (made when missing)
  local name="$1"
  [[ -s "$OUT/$name.webm" ]] && return 0
  echo "clips: encoding $name.webm" >&2
  nice -n 5 ffmpeg -nostdin -y -loglevel error -i "$OUT/$name.y4m" -i "$OUT/$name.wav" -map 0:v -map 1:a \
      -c:v libvpx -b:v 3M -crf 6 -qmin 2 -qmax 16 -deadline good -cpu-used 4 -g 50 -auto-alt-ref 0 \
      -c:a libopus -b:a 128k -shortest -f webm "$OUT/$name.webm.part"
  mv "$OUT/$name.webm.part" "$OUT/$name.webm"
}

clip alice   "${ALICE_FACE:-grace_hopper}" 7  0
clip mallory "${MALLORY_FACE:-astronaut}"  9  "${MALLORY_OFFSET_MS:-400}"
clip carol   "${CAROL_FACE:-luispedro}"    21 0
echo "$OUT"
