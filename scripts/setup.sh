#!/usr/bin/env bash
# Create .venv with tagger and its dependencies. Safe to run again (it is quick when done).
#
# torch: on a machine without an NVIDIA GPU we install the CPU build (torch==2.13.0, about
# 200 MB) instead of the default CUDA build (several GB). Set TORCH_INDEX to a CPU wheel
# index (e.g. PyTorch's own /whl/cpu index) if your pip does not already find a CPU wheel.
# With a GPU, the default CUDA build from PyPI is installed.
#
# System packages (Debian/Ubuntu, installed when running as root and missing): libfluidsynth
# and the TimGM6mb soundfont for the corpus test, festival with its voices and espeak-ng
# for the voice test, ffmpeg (ffprobe) and flac (metaflac) as second tag readers in the
# tests, chromium and chromium-driver for the HTML report test. `make weights` needs more
# (all the soundfonts): scripts/setup_corpus.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
EXTRAS=${EXTRAS-test,train,dask,ray,parquet,beets}  # `EXTRAS= scripts/setup.sh` for tagger alone

need=()
[ -e /usr/share/sounds/sf2/TimGM6mb.sf2 ] || need+=(timgm6mb-soundfont)
ldconfig -p 2>/dev/null | grep -q libfluidsynth || need+=(libfluidsynth3)
command -v ffprobe >/dev/null || need+=(ffmpeg)
command -v metaflac >/dev/null || need+=(flac)
command -v exiftool >/dev/null || need+=(libimage-exiftool-perl)
# the corpus's voice engines, for tests/test_voices.py
command -v text2wave >/dev/null || need+=(festival)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
for v in kallpc16k kdlpc16k italp16k itapc16k us-slt-hts ru; do
  dpkg-query -W -f='${Status}' "festvox-$v" 2>/dev/null | grep -q "install ok installed" || need+=("festvox-$v")
done
if [[ ",$EXTRAS," == *",test,"* ]]; then  # the HTML report is tested in headless Chromium
  command -v chromium >/dev/null || need+=(chromium)
  command -v chromedriver >/dev/null || need+=(chromium-driver)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: please install these Debian packages: ${need[*]} (tests that need them are skipped)" >&2
  fi
fi

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PIP="$VENV/bin/python -m pip --quiet --disable-pip-version-check"
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    $PIP install "torch>=2.1"
  else
    $PIP install torch==2.13.0 ${TORCH_INDEX:+--index-url "$TORCH_INDEX"}
  fi
fi
$PIP install -e ".${EXTRAS:+[$EXTRAS]}"
echo "setup: $("$VENV/bin/tagger" --help >/dev/null && echo ok) ($VENV/bin/tagger)"
