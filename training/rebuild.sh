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
# 3. The base model fine-tuned on all of it (resnet-4bf4f452 was this stage's output), its
#    track threshold tuned on whole validation tracks.
# 4. Issue 26's sources (training/ABLATION.md, "GU", "GU2", "GU3" and "WiSE"): the stage-3
#    model fine-tuned 20 epochs at lr 0.0003 on GeneralUser GS, band music (training/rock.py),
#    label-free negatives, training voices alone and a replay of the old sources
#    (STAGE4_CORPORA below: one line a corpus), then the weight-space ensemble 0.3 x stage 3
#    + 0.7 x that fine-tune (training/wise.py), its track threshold tuned and scored on every
#    held-out set (resnet-d202f3e4, bundled before stage 5, was made so, from smaller validation sets).
# 5. Issue 26's second round (training/ABLATION.md, "S", "S2", "N" and "FIN"): the Salamander
#    piano alone and in mixtures, pop, jazz, folk and orchestral arrangements
#    (training/genres.py), GU's first band corpus, and game music labelled by stage 4's model
#    with musicnn's tags (training/selftrain.py, training/teacher.py: self-training)
#    (STAGE5_CORPORA below); the stage-3 model fine-tuned on stage 4's corpora and these
#    with stage 4's training line, then the published model: the WiSE FINAL_WISE_SHARE x
#    that fine-tune + the rest x stage 3, or the fine-tune itself when FINAL_WISE_SHARE is
#    empty, its track threshold tuned. Scored beside stages 3 and 4, and published.
#
# Resumable: a corpus already built with the same arguments is kept (its build.json), and
# each training run continues from its state.pt, so `make weights` after a kill picks up
# where it stopped. `tagger train` refuses to continue a run made with other settings or
# data: after changing a training line, delete that run folder (and the runs after it: a
# new stage-3 model is another --init for stage 4). FRESH=1 rebuilds every corpus and every
# run from nothing (do that after changing the renderer's code).
#
# Stage times: each stage runs through training/stages.py, which prints `== stage NAME: N s
# (this run), M s in all` when it ends and adds its time to $RUNS/stage_times.json, so the
# times add up over runs killed and resumed; the end prints the table and the total. A
# stage that finished before with the same commands and settings, whose outputs are all
# there, is kept (~0 s, "(kept)") unless a stage before it ran in this run.
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
STAGE4_EPOCHS=${STAGE4_EPOCHS:-20}
STAGE5_EPOCHS=${STAGE5_EPOCHS:-20}
WISE_SHARE=0.7                  # the stage-4 fine-tune's share of stage 4's WiSE
# the stage-5 fine-tune's share of the published weights (the rest: stage 3's); empty (the
# default) publishes the stage-5 fine-tune itself, as FIN's figures chose (ABLATION.md, "FIN")
FINAL_WISE_SHARE=${FINAL_WISE_SHARE-}
# musicnn's own venv (scripts/setup_teacher.sh makes it when TEACHER_PY is missing)
TEACHER_VENV=${TEACHER_VENV:-$PWD/.venv-teacher}
TEACHER_PY=${TEACHER_PY:-$TEACHER_VENV/bin/python}
TRAIN_SOURCES=fluidr3,freepats,sfgmbank,synth
TIMES="$RUNS/stage_times.json"
STAGES=(setup base_corpora base_training stage2_corpora stage3_finetune stage3_tracks
        stage4_corpora stage4_finetune stage4_wise stage5_corpora stage5_finetune stage5_final heldout publish)

if [ "${FRESH:-0}" = 1 ]; then
    KEEP=--overwrite REUSE=()
else
    KEEP=--reuse REUSE=(--reuse)
fi
SC=(--score-cache "$DATA/corpus_train/score_cache.json")
# each stage names what it wrote (training/stages.py keeps a done stage only while they exist)
made() { if [ -n "${STAGE_OUTPUTS:-}" ]; then printf '%s\n' "$@" >> "$STAGE_OUTPUTS"; fi; }
out_of() { while [ $# -gt 1 ]; do if [ "$1" = --out ]; then echo "$2"; return; fi; shift; done; }
build() { "$PY" -m training.build_corpus --jobs "$JOBS" "$KEEP" "$@"; made "$(out_of "$@")"; }
# MODEL's track threshold (files of 2+ segments) tuned on the validation tracks into the run
# folder OUT, the tuning table also into LOG: tune_track_threshold MODEL OUT LOG
tune_track_threshold() {
    rm -rf "$2"
    "$PY" -m training.tune_tracks "$1" --tracks "$DATA/val_tracks" --top-fractions 0.34 --write "$2" | tee "$3"
    made "$2"
}

# The corpora of the stage-4 fine-tune, one line each: NAME BUILDER ARGUMENTS (the builder a
# training module: build_corpus, rock or negatives; no spaces inside an argument). The exact
# commands of training/ABLATION.md, "GU", "GU2" and "GU3"; to train on one more corpus, add
# its line here.
STAGE4_CORPORA=(
    "corpus_gu build_corpus --sources generaluser --seed 30 --clips-per-label 40 --mixtures 900 --kinds single,mix --vocals 0.15"
    "corpus_rock2 rock --clips 1500 --seed 1 --other 0.3 --along 0.2"
    "corpus_negatives_train negatives --split train --clips 1200 --seed 0"
    "corpus_replay build_corpus --sources $TRAIN_SOURCES --seed 31 --clips-per-label 12 --mixtures 400 --kinds single,mix,voice --vocals 0.15 --effects classic"
    "corpus_replay2 build_corpus --sources $TRAIN_SOURCES --seed 32 --clips-per-label 40 --mixtures 1500 --kinds single,mix --vocals 0.15 --effects classic"
    "corpus_replay3 build_corpus --sources $TRAIN_SOURCES --seed 33 --clips-per-label 100 --mixtures 4000 --kinds single,mix --vocals 0.15 --effects classic"
    "corpus_voice_train build_corpus --sources $TRAIN_SOURCES --seed 4 --clips-per-label 300 --kinds voice --effects classic"
)
STAGE4_SETS=()
for spec in "${STAGE4_CORPORA[@]}"; do STAGE4_SETS+=("${spec%% *}"); done
# The corpora stage 5 adds to stage 4's, the same way (builders: stage 4's, genres and
# selftrain): training/ABLATION.md, "S", "S2" and "N"; selftrain's teacher is stage 4's model,
# and musicnn's tags join it (selftrain_corpus below)
STAGE5_CORPORA=(
    "corpus_salamander build_corpus --sources salamander --seed 41 --clips-per-label 300 --kinds single --vocals 0.15 --effects production"
    "corpus_salamander_mix build_corpus --sources $TRAIN_SOURCES,generaluser,salamander --seed 42 --mixtures 600 --kinds mix --effects production"
    "corpus_genres genres --clips 1600 --seed 51 --other 0.3"
    "corpus_rock rock --clips 1500 --seed 0"
    "corpus_selftrain selftrain --packages wesnoth-1.16-music warzone2100-music supertux-data --per-track 40 --seed 0"
)
STAGE5_SETS=()
for spec in "${STAGE5_CORPORA[@]}"; do STAGE5_SETS+=("${spec%% *}"); done
# the stage-3 fine-tune's corpora
TRAIN_SETS=(corpus_train corpus_mix corpus_voice corpus_vocal corpus_prod corpus_physical corpus_voice2 corpus_vocal2
            corpus_mix2 corpus_mix3 corpus_mix4v corpus_mix5v corpus_vocal3)
HELDOUT_SETS=(corpus_test corpus_test_vocal corpus_voice_test corpus_test2 corpus_test2_vocal corpus_voice_test2
              corpus_physical_test corpus_recorded corpus_recorded2 corpus_band corpus_negatives_test)
one() { local found=("$@"); [ ${#found[@]} = 1 ] && [ -e "${found[0]}" ] || { echo "expected one file: $*" >&2; return 1; }; echo "${found[0]}"; }
stage3_model() { one "$RUNS"/bundled_tracks/*.safetensors; }
stage4_model() { one "$RUNS"/stage4_tracks/*.safetensors; }
stage5_model() { one "$RUNS"/stage5_tracks/*.safetensors; }

stage_setup() {
    bash scripts/setup_corpus.sh    # the soundfonts, timidity, festival, espeak-ng and the recordings (Debian packages)
}

# 1. base corpora and the base model. Every training runs --compile: the training step through
# torch.compile, the same computation ~1.4x faster on a 2-core CPU (scripts/bench_train_step.py)
stage_base_corpora() {
    build --out "$DATA/corpus_train" --sources $TRAIN_SOURCES --seed 0 --effects classic
    build --out "$DATA/corpus_mix" --sources $TRAIN_SOURCES --seed 3 --mixtures 4000 --kinds mix --effects classic "${SC[@]}"
    build --out "$DATA/corpus_val" --sources timgm6mb --seed 1 --clips-per-label 40 --mixtures 600 \
        --kinds single,mix --effects classic "${SC[@]}"
    build --out "$DATA/corpus_test" --sources timgm6mb --seed 2 --clips-per-label 60 --mixtures 600 \
        --kinds single,mix --effects classic "${SC[@]}"
}
stage_base_training() {
    "$PY" -m tagger train "$DATA/corpus_train" "$DATA/corpus_mix" --val "$DATA/corpus_val" --out "$RUNS/base" \
        --name resnet --width 32 --epochs "$EPOCHS" --patience 8 --jobs "$JOBS" --cache "$DATA/cache" --compile
    made "$RUNS/base"
}

# 2. voices, production, physical models (training), and their held-out twins
stage_stage2_corpora() {
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
    made "$DATA/corpus_recorded" "$DATA/corpus_recorded2"
    # a band's songs as mixed (fretsonfire-songs-muldjord's guitar and backing stems summed,
    # 10-s windows where the guitar is within 10 dB of the backing; truth partial: electric_guitar)
    "$PY" -m training.band --out "$DATA/corpus_band" "$KEEP"
    made "$DATA/corpus_band"
    # label-free negatives, held-out split (its own random streams; pingus-data's sound effects):
    # no instrument label should be given (training/negatives.py)
    "$PY" -m training.negatives --out "$DATA/corpus_negatives_test" --split heldout "$KEEP"
    made "$DATA/corpus_negatives_test"
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
    "$PY" -m training.val_tracks --out "$DATA/val_tracks" --tracks 100 --seed 7 "${REUSE[@]}"
    made "$DATA/val_tracks"
}
# 3. fine-tune on everything; the track threshold (files of 2+ segments) tuned on whole
# validation tracks, the top-third aggregation kept (those tracks cannot show what a plain mean
# costs a part heard in one section). The fine-tune adds no random spectral envelope
# (--eq-db 0): on these corpora it only blurred timbres (training/ABLATION.md, R10, R11)
stage_stage3_finetune() {
    local init
    init=$(one "$RUNS"/base/*.safetensors)
    "$PY" -m tagger train "${TRAIN_SETS[@]/#/$DATA/}" \
        --val "$DATA/corpus_val" --val "$DATA/corpus_val_voice" --test "$DATA/corpus_test" --out "$RUNS/bundled" \
        --init "$init" --name resnet --width 32 --epochs "$FINETUNE_EPOCHS" \
        --patience 20 --lr 0.001 --eq-db 0 --jobs "$JOBS" --cache "$DATA/cache" --compile
    made "$RUNS/bundled"
}
stage_stage3_tracks() {
    local model
    model=$(one "$RUNS"/bundled/*.safetensors)
    tune_track_threshold "$model" "$RUNS/bundled_tracks" "$RUNS/bundled/track_tuning.txt"
}

# 4. issue 26's sources: the STAGE4_CORPORA above, validated on a small TimGM6mb set as in
# "GU" (the epoch and nothing else: the published thresholds are stage 3's clip threshold and a
# track threshold tuned again below)
stage4_corpus() {  # NAME BUILDER ARGUMENTS...
    local name=$1 builder=$2
    shift 2
    case $builder in
        build_corpus) build --out "$DATA/$name" "$@" "${SC[@]}" ;;
        rock) "$PY" -m training.rock --out "$DATA/$name" --jobs "$JOBS" "${REUSE[@]}" "$@"; made "$DATA/$name" ;;
        negatives) "$PY" -m training.negatives --out "$DATA/$name" "$KEEP" "$@"; made "$DATA/$name" ;;
        *) echo "STAGE4_CORPORA: unknown builder $builder (build_corpus, rock or negatives)" >&2; return 1 ;;
    esac
}
stage_stage4_corpora() {
    build --out "$DATA/corpus_val_small" --sources timgm6mb --seed 1 --clips-per-label 10 --mixtures 150 \
        --kinds single,mix --effects classic "${SC[@]}"
    local spec words
    for spec in "${STAGE4_CORPORA[@]}"; do
        read -ra words <<< "$spec"
        stage4_corpus "${words[@]}"
    done
}
# the stage-3 model fine-tuned on the corpora SET... (folder names under $DATA), validated on
# the small TimGM6mb set: finetune_stage3 OUT EPOCHS SET...
finetune_stage3() {
    local out=$1 epochs=$2 init
    shift 2
    init=$(stage3_model)
    "$PY" -m tagger train "${@/#/$DATA/}" --val "$DATA/corpus_val_small" --out "$out" \
        --init "$init" --name resnet --width 32 --epochs "$epochs" --patience 20 \
        --lr 0.0003 --eq-db 0 --jobs "$JOBS" --cache "$DATA/cache" --compile
    made "$out"
}
stage_stage4_finetune() { finetune_stage3 "$RUNS/stage4" "$STAGE4_EPOCHS" "${STAGE4_SETS[@]}"; }
# the weight-space ensemble (1 - WISE_SHARE) x stage 3 + WISE_SHARE x the fine-tune, with stage 3's
# thresholds (training/ABLATION.md, "WiSE"); an ensemble already written from the same two models is kept
stage_stage4_wise() {
    local start tuned wise
    start=$(stage3_model)
    tuned=$(one "$RUNS"/stage4/*.safetensors)
    "$PY" -m training.wise "$start" "$tuned" --share "$WISE_SHARE" --out "$RUNS/stage4_wise" --only
    wise=$(one "$RUNS"/stage4_wise/*.safetensors)
    made "$RUNS/stage4_wise"
    tune_track_threshold "$wise" "$RUNS/stage4_tracks" "$RUNS/stage4_wise/track_tuning.txt"
}

# 5. the STAGE5_CORPORA above, then the stage-3 model fine-tuned on stage 4's corpora and
# these, exactly as stage 4 otherwise (training/ABLATION.md, "FIN")
stage5_corpus() {  # NAME BUILDER ARGUMENTS...
    local name=$1 builder=$2
    case $builder in
        build_corpus|rock|negatives) stage4_corpus "$@" ;;
        genres) shift 2; "$PY" -m training.genres --out "$DATA/$name" --jobs "$JOBS" "${REUSE[@]}" "$@"; made "$DATA/$name" ;;
        selftrain) shift 2; selftrain_corpus "$name" "$@" ;;
        *) echo "STAGE5_CORPORA: unknown builder $builder (build_corpus, rock, negatives, genres or selftrain)" >&2
           return 1 ;;
    esac
}
# self-training (training/selftrain.py): game music clips and stage 4's model's scores, musicnn's
# tags of every clip in its own venv (training/teacher.py; resumes, and starts again when the
# clips were cut again), then the manifest from both teachers, at most 3 uncertain labels a clip
# (the first call's teacher-only manifest is kept beside it as manifest_ours.csv)
selftrain_corpus() {  # NAME ARGUMENTS...
    local name=$1 out teacher
    shift
    out="$DATA/$name"
    teacher=$(stage4_model)
    "$PY" -m training.selftrain --out "$out" --teacher "$teacher" "$@" --manifest manifest_ours.csv "${REUSE[@]}"
    if [ -e "$out/musicnn.csv" ] && [ "$out/clips.csv" -nt "$out/musicnn.csv" ]; then rm "$out/musicnn.csv"; fi
    if [ ! -x "$TEACHER_PY" ]; then bash scripts/setup_teacher.sh "$TEACHER_VENV"; fi
    "$TEACHER_PY" -m training.teacher "$out/clips.csv" --jobs "$JOBS"
    "$PY" -m training.selftrain --out "$out" --teacher "$teacher" "$@" --reuse --teacher-tags "$out/musicnn.csv" \
        --max-uncertain 3
    made "$out"
}
stage_stage5_corpora() {
    local spec words
    for spec in "${STAGE5_CORPORA[@]}"; do
        read -ra words <<< "$spec"
        stage5_corpus "${words[@]}"
    done
}
stage_stage5_finetune() { finetune_stage3 "$RUNS/stage5" "$STAGE5_EPOCHS" "${STAGE4_SETS[@]}" "${STAGE5_SETS[@]}"; }
# the published model: the WiSE (1 - FINAL_WISE_SHARE) x stage 3 + FINAL_WISE_SHARE x the stage-5
# fine-tune with stage 3's thresholds, or (FINAL_WISE_SHARE empty) the fine-tune itself; its
# track threshold tuned as stage 4's
stage_stage5_final() {
    local start tuned final
    start=$(stage3_model)
    tuned=$(one "$RUNS"/stage5/*.safetensors)
    if [ -n "$FINAL_WISE_SHARE" ]; then
        "$PY" -m training.wise "$start" "$tuned" --share "$FINAL_WISE_SHARE" --out "$RUNS/stage5_wise" --only
        final=$(one "$RUNS"/stage5_wise/*.safetensors)
        made "$RUNS/stage5_wise"
    else
        rm -rf "$RUNS/stage5_wise"
        final=$tuned
    fi
    tune_track_threshold "$final" "$RUNS/stage5_tracks" "$(dirname "$final")/track_tuning.txt"
}

# every held-out set, for the published model and, beside it, stage 3's and stage 4's
stage_heldout() {
    local stage3 stage4 stage5
    stage3=$(stage3_model)
    stage4=$(stage4_model)
    stage5=$(stage5_model)
    mkdir -p "$RUNS/heldout"
    "$PY" -m training.heldout "$stage3" --data "$DATA" --json "$RUNS/heldout/stage3.json"
    "$PY" -m training.heldout "$stage4" --data "$DATA" --json "$RUNS/heldout/stage4.json"
    "$PY" -m training.heldout "$stage5" --data "$DATA" --json "$RUNS/heldout/stage5.json"
    made "$RUNS/heldout/stage3.json" "$RUNS/heldout/stage4.json" "$RUNS/heldout/stage5.json"
}
# into weights/ with its card (the same inputs again: the published file is kept)
stage_publish() {
    "$PY" -m training.publish "$RUNS/stage5_tracks" --heldout "$RUNS/heldout/stage5.json" \
        --corpus "${TRAIN_SETS[@]/#/$DATA/}" "${STAGE4_SETS[@]/#/$DATA/}" "${STAGE5_SETS[@]/#/$DATA/}" \
        "$DATA/corpus_val" "$DATA/corpus_val_voice" "$DATA/corpus_val_small" "${HELDOUT_SETS[@]/#/$DATA/}"
    made weights
}

# what a stage is made of: its commands, and the helpers, lists and settings they use. A stage
# done before is kept while this is unchanged; change it and the stage runs again, then every one after
stage_key() {
    local body name seen=" " more=1
    body=$(declare -f "stage_$1")
    while [ $more = 1 ]; do  # the helpers the stage calls, and those they call
        more=0
        for name in build stage4_corpus stage5_corpus selftrain_corpus finetune_stage3 tune_track_threshold; do
            if [[ $body == *"$name"* && $seen != *" $name "* ]]; then
                body+=$'\n'$(declare -f "$name") seen+="$name " more=1
            fi
        done
    done
    echo "$body"
    for name in DATA RUNS EPOCHS FINETUNE_EPOCHS STAGE4_EPOCHS STAGE5_EPOCHS WISE_SHARE FINAL_WISE_SHARE TRAIN_SOURCES SC \
                STAGE4_CORPORA STAGE4_SETS STAGE5_CORPORA STAGE5_SETS TRAIN_SETS HELDOUT_SETS; do
        if [[ $body == *"$name"* ]]; then declare -p "$name"; fi
    done
    if [ "$1" = publish ]; then cat training/card.json training/ABLATION.md | sha256sum; fi
}

if [ "${1:-}" = --stage ]; then  # one stage, as training/stages.py runs it
    "stage_$2"
    exit
fi
if [ "${FRESH:-0}" = 1 ]; then
    rm -rf "$RUNS/base" "$RUNS/bundled" "$RUNS/bundled_tracks" "$RUNS/stage4" "$RUNS/stage4_wise" \
        "$RUNS/stage4_tracks" "$RUNS/stage5" "$RUNS/stage5_wise" "$RUNS/stage5_tracks" "$RUNS/heldout" "$TIMES"
fi
mkdir -p "$RUNS"
RUN_ID="$(date +%s)-$$"
for stage in "${STAGES[@]}"; do
    "$PY" -m training.stages run --file "$TIMES" --run "$RUN_ID" --key "$(stage_key "$stage")" "$stage" \
        -- bash training/rebuild.sh --stage "$stage"
done
echo "== make weights: every stage done; the time of each, over every run since the first (or FRESH=1):"
"$PY" -m training.stages table --file "$TIMES"
