#!/usr/bin/env bash
# Rebuild the training corpora and the bundled weights from scratch (make weights).
#
# 1. Base corpora, exactly as the first bundled model's (FluidR3_GM + csound's sf_GMbank +
#    freepats through timidity + our own synthesiser; the classic effects chain), and a base
#    model trained on them for 45 epochs (30 until R8: training/ABLATION.md).
# 2. What the model hears beyond General MIDI, each its own corpus so each can be left out
#    (training/ABLATION.md): voices (festival singing, festival and espeak-ng speech) alone
#    and on top of instruments; real production (stem effects, simulated rooms, bus
#    compression and limiting); and the project's physical models.
# 3. The base model fine-tuned on all of it.
#
# Resumable: a corpus already built with the same arguments is kept (its build.json), and
# each training run continues from its state.pt, so `make weights` after a kill picks up
# where it stopped. `tagger train` refuses to continue a run made with other settings or
# data: after changing a training line, delete that run folder. FRESH=1 rebuilds every
# corpus and both runs from nothing (do that after changing the renderer's code).
#
# Held out, never trained or tuned on: TimGM6mb (one corpus validates: epoch and
# per-label thresholds; a second, disjoint one is only reported), the same test clips with
# held-out voices on top, held-out voices alone, and physical-model variants training
# never uses, recorded instruments (two sets, training/recorded.py) a band's songs as mixed
# (training/band.py) and label-free negatives (training/negatives.py). training/heldout.py
# scores the result on all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-data}
RUNS=${RUNS:-runs}
JOBS=${JOBS:-2}
EPOCHS=${EPOCHS:-45}            # base model
FINETUNE_EPOCHS=${FINETUNE_EPOCHS:-24}
TRAIN_SOURCES=fluidr3,freepats,sfgmbank,synth

bash scripts/setup_corpus.sh    # the soundfonts, timidity, festival, espeak-ng and the recordings (Debian packages)
if [ "${FRESH:-0}" = 1 ]; then
    KEEP=--overwrite TRACKS_KEEP=()
    rm -rf "$RUNS/base" "$RUNS/bundled" "$RUNS/bundled_tracks"
else
    KEEP=--reuse TRACKS_KEEP=(--reuse)
fi
build() { "$PY" -m training.build_corpus --jobs "$JOBS" "$KEEP" "$@"; }
SC=(--score-cache "$DATA/corpus_train/score_cache.json")

# 1. base corpora and the base model. Both trainings run --compile: the training step through
# torch.compile, the same computation ~1.4x faster on a 2-core CPU (scripts/bench_train_step.py)
build --out "$DATA/corpus_train" --sources $TRAIN_SOURCES --seed 0 --effects classic
build --out "$DATA/corpus_mix" --sources $TRAIN_SOURCES --seed 3 --mixtures 4000 --kinds mix --effects classic "${SC[@]}"
build --out "$DATA/corpus_val" --sources timgm6mb --seed 1 --clips-per-label 40 --mixtures 600 \
    --kinds single,mix --effects classic "${SC[@]}"
build --out "$DATA/corpus_test" --sources timgm6mb --seed 2 --clips-per-label 60 --mixtures 600 \
    --kinds single,mix --effects classic "${SC[@]}"
"$PY" -m tagger train "$DATA/corpus_train" "$DATA/corpus_mix" --val "$DATA/corpus_val" --out "$RUNS/base" \
    --name resnet --width 32 --epochs "$EPOCHS" --patience 8 --jobs "$JOBS" --cache "$DATA/cache" --compile

# 2. voices, production, physical models (training), and their held-out twins
build --out "$DATA/corpus_voice" --sources $TRAIN_SOURCES --seed 4 --clips-per-label 1000 --kinds voice \
    --effects classic "${SC[@]}"
build --out "$DATA/corpus_vocal" --sources $TRAIN_SOURCES --seed 5 --clips-per-label 40 --mixtures 1000 \
    --kinds single,mix --vocals 0.8 --effects classic "${SC[@]}"
build --out "$DATA/corpus_val_voice" --sources timgm6mb --seed 6 --clips-per-label 15 --mixtures 300 \
    --kinds single,mix,voice --vocals 0.5 --effects classic "${SC[@]}"
build --out "$DATA/corpus_test_vocal" --sources timgm6mb --seed 2 --clips-per-label 60 --mixtures 600 \
    --kinds single,mix --vocals 1.0 --voice-split heldout --effects classic "${SC[@]}"   # = corpus_test + voices
build --out "$DATA/corpus_voice_test" --sources timgm6mb --seed 7 --clips-per-label 400 --kinds voice \
    --voice-split heldout --effects classic "${SC[@]}"
# more of the same, so that a voice target is not judged on 600 mixtures and 258 voices: 1500
# more TimGM6mb mixtures without and with a held-out voice, ~650 more held-out voices alone
build --out "$DATA/corpus_test2" --sources timgm6mb --seed 19 --mixtures 1500 --kinds mix --effects classic "${SC[@]}"
build --out "$DATA/corpus_test2_vocal" --sources timgm6mb --seed 19 --mixtures 1500 --kinds mix --vocals 1.0 \
    --voice-split heldout --effects classic "${SC[@]}"                 # = corpus_test2 + voices
build --out "$DATA/corpus_voice_test2" --sources timgm6mb --seed 20 --clips-per-label 1000 --kinds voice \
    --voice-split heldout --effects classic "${SC[@]}"
build --out "$DATA/corpus_prod" --sources $TRAIN_SOURCES --seed 8 --clips-per-label 100 --mixtures 1500 \
    --vocals 0.2 "${SC[@]}"                                  # production effects (the default)
build --out "$DATA/corpus_physical" --sources physical --seed 10 --clips-per-label 100 --mixtures 1500 \
    --vocals 0.2 "${SC[@]}"
build --out "$DATA/corpus_physical_test" --sources physical_heldout --seed 9 --clips-per-label 30 \
    --mixtures 300 --kinds single,mix --effects classic "${SC[@]}"
# recorded instrument samples (lmms-common, sonic-pi-samples), alone and mixed, and a second,
# larger set of recorded phrases and notes (gcompris-qt-data, grandorgue-demo,
# hydrogen-drumkits-effects, fretsonfire-songs-muldjord, csoundqt-examples): the held-out
# sets that are not our own render (training/recorded.py)
"$PY" -m training.recorded --out "$DATA/corpus_recorded" "$KEEP"
"$PY" -m training.recorded --set recorded2 --out "$DATA/corpus_recorded2" "$KEEP"
# a band's songs as mixed (fretsonfire-songs-muldjord's guitar and backing stems summed,
# 10-s windows where the guitar is within 10 dB of the backing; truth partial: electric_guitar)
"$PY" -m training.band --out "$DATA/corpus_band" "$KEEP"
# label-free negatives, held-out split (its own random streams; pingus-data's sound effects):
# no instrument label should be given (training/negatives.py)
"$PY" -m training.negatives --out "$DATA/corpus_negatives_test" --split heldout "$KEEP"
build --out "$DATA/corpus_voice2" --sources $TRAIN_SOURCES,physical --seed 11 --clips-per-label 800 \
    --kinds voice "${SC[@]}"
build --out "$DATA/corpus_vocal2" --sources $TRAIN_SOURCES,physical --seed 12 --clips-per-label 30 \
    --mixtures 1200 --kinds single,mix --vocals 1.0 "${SC[@]}"
# more mixtures: the network under-fits them (training/ABLATION.md, R3-R7): 8000 of the
# base sources, 8000 more with the physical models and production effects, and 16,000 more
# of the base sources with a training voice on top of 40 % (voiceless ones alone made the
# voice penalty grow)
build --out "$DATA/corpus_mix2" --sources $TRAIN_SOURCES --seed 14 --mixtures 8000 --kinds mix --effects classic "${SC[@]}"
build --out "$DATA/corpus_mix3" --sources $TRAIN_SOURCES,physical --seed 15 --mixtures 8000 --kinds mix "${SC[@]}"
build --out "$DATA/corpus_mix4v" --sources $TRAIN_SOURCES --seed 16 --mixtures 8000 --kinds mix --vocals 0.4 \
    --effects classic "${SC[@]}"
build --out "$DATA/corpus_mix5v" --sources $TRAIN_SOURCES --seed 17 --mixtures 8000 --kinds mix --vocals 0.4 \
    --effects classic "${SC[@]}"
# espeak-ng speech on top of 2000 more base-source mixtures, espeak-ng being the held-out
# voice that costs instrument labels most (training/ABLATION.md, R9; what it does to the
# voice penalty is within one run's spread, R9c; the bundled model was trained with it)
build --out "$DATA/corpus_vocal3" --sources $TRAIN_SOURCES --seed 18 --mixtures 2000 --kinds mix --vocals 1.0 \
    --voice-styles espeak=1 --effects classic "${SC[@]}"
# multi-segment validation tracks (9-20 s, 1-5 instruments, training sources only): the
# track-level threshold and aggregation are tuned on these (training/tune_tracks.py)
"$PY" -m training.val_tracks --out "$DATA/val_tracks" --tracks 100 --seed 7 "${TRACKS_KEEP[@]}"

# 3. fine-tune on everything, score on every held-out set, publish. The fine-tune adds no
# random spectral envelope (--eq-db 0): on these corpora it only blurred timbres
# (training/ABLATION.md, R10, R11)
TRAIN_SETS=(corpus_train corpus_mix corpus_voice corpus_vocal corpus_prod corpus_physical corpus_voice2 corpus_vocal2
            corpus_mix2 corpus_mix3 corpus_mix4v corpus_mix5v corpus_vocal3)
"$PY" -m tagger train "${TRAIN_SETS[@]/#/$DATA/}" \
    --val "$DATA/corpus_val" --val "$DATA/corpus_val_voice" --test "$DATA/corpus_test" --out "$RUNS/bundled" \
    --init "$(ls "$RUNS"/base/*.safetensors)" --name resnet --width 32 --epochs "$FINETUNE_EPOCHS" \
    --patience 20 --lr 0.001 --eq-db 0 --jobs "$JOBS" --cache "$DATA/cache" --compile
# the track threshold (files of 2+ segments), tuned on whole validation tracks; the top-third
# aggregation is kept (those tracks cannot show what a plain mean costs a part heard in one section)
"$PY" -m training.heldout "$RUNS"/bundled/*.safetensors --data "$DATA" --json "$RUNS/bundled/heldout.json"
rm -rf "$RUNS/bundled_tracks"
"$PY" -m training.tune_tracks "$RUNS"/bundled/*.safetensors --tracks "$DATA/val_tracks" --top-fractions 0.34 \
    --write "$RUNS/bundled_tracks" | tee "$RUNS/bundled/track_tuning.txt"
"$PY" -m training.publish "$RUNS/bundled_tracks" --heldout "$RUNS/bundled/heldout.json" \
    --corpus "${TRAIN_SETS[@]/#/$DATA/}" "$DATA"/corpus_val "$DATA"/corpus_val_voice "$DATA"/corpus_test \
    "$DATA"/corpus_test_vocal "$DATA"/corpus_voice_test "$DATA"/corpus_test2 "$DATA"/corpus_test2_vocal \
    "$DATA"/corpus_voice_test2 "$DATA"/corpus_physical_test "$DATA"/corpus_recorded "$DATA"/corpus_recorded2 \
    "$DATA"/corpus_band "$DATA"/corpus_negatives_test
