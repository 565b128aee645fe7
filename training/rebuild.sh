#!/usr/bin/env bash
# Rebuild the training corpus and the bundled weights from scratch (make weights).
#
# One corpus from four sources, split by source: train on FluidR3_GM + freepats
# (timidity) + our own synthesiser; validate (early stopping, per-label thresholds) on
# csound's sf_GMbank; report on a separate TimGM6mb corpus. Neither the validation nor
# the test soundfont is ever trained on, so their figures say how the model does on
# timbres it never heard.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-data}
RUN=${RUN:-runs/bundled}
JOBS=${JOBS:-2}
EPOCHS=${EPOCHS:-16}

"$PY" -m training.build_corpus --out "$DATA/corpus_train" --sources fluidr3,freepats,sfgmbank,synth \
    --seed 0 --jobs "$JOBS" --overwrite
"$PY" -m training.build_corpus --out "$DATA/corpus_test" --sources timgm6mb --seed 2 \
    --clips-per-label 60 --mixtures 600 --kinds single,mix --jobs "$JOBS" --overwrite \
    --score-cache "$DATA/corpus_train/score_cache.json"
"$PY" -m training.split_by_source "$DATA/corpus_train" train=fluidr3,freepats,synth val=sfgmbank

"$PY" -m tagger train "$DATA/corpus_train/train.csv" --val "$DATA/corpus_train/val.csv" \
    --test "$DATA/corpus_test/manifest.csv" --out "$RUN" --name resnet --width 24 --epochs "$EPOCHS" --patience 5 --jobs "$JOBS"
"$PY" -m training.publish "$RUN" --corpus "$DATA/corpus_train" "$DATA/corpus_test"
