"""training/rebuild.sh (make weights) run end to end with its commands stubbed: stages in order,
a run killed part way resumes with the finished stages kept and the times added up, stage 4
fine-tunes the stage-3 model on issue 26's corpora, then WiSE, and stage 5 fine-tunes the
stage-3 model again on those and the second round's (self-training labelled by stage 4's model
and musicnn), then its WiSE (or the fine-tune itself), scoring, publish.

The script is copied into a scratch repository whose scripts/setup_corpus.sh is a stub, and
PY points at a fake python that records its arguments and makes the outputs each command
would (``python -m training.stages`` goes to the real one); TEACHER_VENV's python, musicnn's,
is a stub that a stub scripts/setup_teacher.sh installs. The script itself has no test mode.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["setup", "base_corpora", "base_training", "stage2_corpora", "stage3_finetune", "stage3_tracks",
          "stage4_corpora", "stage4_finetune", "stage4_wise", "stage5_corpora", "stage5_finetune", "stage5_final",
          "heldout", "publish"]
STAGE4_SETS = ["corpus_gu", "corpus_rock2", "corpus_negatives_train", "corpus_replay", "corpus_replay2",
               "corpus_replay3", "corpus_voice_train"]
STAGE5_SETS = ["corpus_salamander", "corpus_salamander_mix", "corpus_genres", "corpus_rock", "corpus_selftrain"]

FAKE_PYTHON = r'''#!{python}
"""A stand-in python for rebuild.sh: records argv, makes the outputs, fails where FAKE_FAIL says."""
import hashlib, json, os, sys
from pathlib import Path

argv = sys.argv[1:]
if argv[:2] == ["-m", "training.stages"]:
    os.execv(sys.executable, [sys.executable] + argv)
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps(argv) + "\n")
if os.environ.get("FAKE_FAIL") and os.environ["FAKE_FAIL"] in " ".join(argv) + " ":
    sys.exit(1)


def opt(name):
    return argv[argv.index(name) + 1] if name in argv else None


def weights(folder, name):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.safetensors"):
        old.unlink()
    (folder / f"{{name}}-{{hashlib.sha256(str(folder).encode()).hexdigest()[:8]}}.safetensors").write_text(" ".join(argv))


module = argv[1]
if module == "tagger":  # tagger train ... --out RUN
    weights(opt("--out"), "resnet")
    Path(opt("--out"), "state.pt").write_text("")
elif module == "training.tune_tracks":
    weights(opt("--write"), "resnet")
    print("chosen: top_fraction 0.34, threshold 0.5")
elif module == "training.wise":
    weights(opt("--out"), "resnet-wise70")
elif module == "training.heldout":
    Path(opt("--json")).write_text("{{}}")
elif module == "training.publish":
    weights(opt("--out") or "weights", "resnet")
elif opt("--out"):  # a corpus builder
    Path(opt("--out")).mkdir(parents=True, exist_ok=True)
    Path(opt("--out"), "build.json").write_text(json.dumps(argv))
    if module == "training.selftrain":
        if "--reuse" not in argv or not Path(opt("--out"), "clips.csv").exists():
            Path(opt("--out"), "clips.csv").write_text("path\nclips/a.flac\n")
        Path(opt("--out"), opt("--manifest") or "manifest.csv").write_text("path,labels,targets\n")
'''

# musicnn's venv python, installed by the stub setup_teacher.sh: tags beside the clip list
FAKE_MUSICNN = r'''#!{python}
import json, os, sys
from pathlib import Path

argv = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps(["musicnn"] + argv) + "\n")
assert argv[:2] == ["-m", "training.teacher"], argv
tags = Path(argv[2]).with_name("musicnn.csv")
with tags.open("a") as f:  # appended to, as the real one resumes
    f.write(("" if tags.stat().st_size else "path,guitar\n") + "clips/a.flac,0.5\n")
'''


def _repo(tmp_path: Path) -> tuple[Path, dict]:
    repo = tmp_path / "repo"
    (repo / "training").mkdir(parents=True)
    (repo / "scripts").mkdir()
    shutil.copy(ROOT / "training/rebuild.sh", repo / "training/rebuild.sh")
    for name in ("card.json", "ABLATION.md"):
        shutil.copy(ROOT / "training" / name, repo / "training" / name)
    (repo / "scripts/setup_corpus.sh").write_text('echo \'["setup"]\' >> "$FAKE_LOG"\n')
    musicnn = tmp_path / "fakemusicnn"
    musicnn.write_text(FAKE_MUSICNN.format(python=sys.executable))
    (repo / "scripts/setup_teacher.sh").write_text(
        f'echo "[\\"setup_teacher\\", \\"$1\\"]" >> "$FAKE_LOG"\n'
        f'mkdir -p "$1/bin" && cp {musicnn} "$1/bin/python" && chmod +x "$1/bin/python"\n')
    fake = tmp_path / "fakepython"
    fake.write_text(FAKE_PYTHON.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PY": str(fake), "FAKE_LOG": str(tmp_path / "calls.jsonl"), "PYTHONPATH": str(ROOT),
           "TEACHER_VENV": str(tmp_path / "musicnn-venv")}
    for name in ("FRESH", "FAKE_FAIL", "TEACHER_PY", "FINAL_WISE_SHARE", "STAGE5_EPOCHS"):
        env.pop(name, None)
    return repo, env


def _rebuild(repo: Path, env: dict, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "training/rebuild.sh"], cwd=repo, env={**env, **extra}, capture_output=True,
                          text=True, timeout=300)


def _calls(env: dict) -> list[list[str]]:
    log = Path(env["FAKE_LOG"])
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _stage_lines(out: str) -> list[tuple[str, str]]:
    return re.findall(r"^== stage (\w+): \d+ s \(this run\), \d+ s in all(.*)$", out, re.M)


def _opt(call: list[str], name: str) -> str:
    return call[call.index(name) + 1]


def _model(repo: Path, folder: str) -> str:
    (path,) = (repo / folder).glob("*.safetensors")
    return str(path.relative_to(repo))


def test_every_stage_runs_in_order_and_stage_4_fine_tunes_the_stage_3_model(tmp_path):
    repo, env = _repo(tmp_path)
    done = _rebuild(repo, env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [name for name, _ in _stage_lines(done.stdout)] == STAGES
    assert all(note == "" for _, note in _stage_lines(done.stdout))
    table = done.stdout[done.stdout.index("every stage done"):]
    assert all(re.search(rf"^{s}\s+\d+\s+1\s+done$", table, re.M) for s in STAGES)
    assert re.search(r"^total\s+\d+", table, re.M)

    calls = _calls(env)
    assert calls[0] == ["setup"]
    trains = [c for c in calls if c[1:3] == ["tagger", "train"]]
    assert [_opt(c, "--out") for c in trains] == ["runs/base", "runs/bundled", "runs/stage4", "runs/stage5"]
    (tune3,) = [c for c in calls if c[1:2] == ["training.tune_tracks"] and _opt(c, "--write") == "runs/bundled_tracks"]
    (stage3,) = [str(p.relative_to(repo)) for p in (repo / "runs/bundled_tracks").glob("*.safetensors")]
    stage4 = trains[2]
    assert _opt(stage4, "--init") == stage3  # the stage-3 model, its track threshold tuned
    assert [a for a in stage4[3:stage4.index("--val")]] == [f"data/{s}" for s in STAGE4_SETS]
    assert (_opt(stage4, "--val"), _opt(stage4, "--lr"), _opt(stage4, "--epochs"), _opt(stage4, "--eq-db")) == \
        ("data/corpus_val_small", "0.0003", "20", "0")
    assert "--compile" in stage4 and _opt(stage4, "--patience") == "20"
    # each stage-4 corpus is built before the fine-tune, with the command of ABLATION.md
    built = {Path(_opt(c, "--out")).name: c for c in calls[:calls.index(stage4)] if "--out" in c}
    assert set(STAGE4_SETS) | {"corpus_val_small"} <= set(built)
    assert built["corpus_rock2"][1:] == ["training.rock", "--out", "data/corpus_rock2", "--jobs", "2", "--reuse",
                                         "--clips", "1500", "--seed", "1", "--other", "0.3", "--along", "0.2"]
    assert built["corpus_gu"][built["corpus_gu"].index("--sources"):] == [
        "--sources", "generaluser", "--seed", "30", "--clips-per-label", "40", "--mixtures", "900", "--kinds",
        "single,mix", "--vocals", "0.15", "--score-cache", "data/corpus_train/score_cache.json"]
    (wise,) = [c for c in calls if c[1:2] == ["training.wise"]]  # stage 4's; stage 5 publishes its fine-tune
    assert wise[2:4] == [stage3, _model(repo, "runs/stage4")]
    assert _opt(wise, "--share") == "0.7" and "--only" in wise and _opt(wise, "--out") == "runs/stage4_wise"
    assert calls.index(wise) > calls.index(stage4)

    # stage 5: self-training labelled by stage 4's model (its track threshold tuned: what stage 4
    # publishes), musicnn's tags in its own venv, then the stage-3 model fine-tuned on both rounds
    stage4_model = _model(repo, "runs/stage4_tracks")
    selftrain = [c for c in calls if c[1:2] == ["training.selftrain"]]
    assert len(selftrain) == 2 and all(_opt(c, "--teacher") == stage4_model for c in selftrain)
    assert all(_opt(c, "--out") == "data/corpus_selftrain" and _opt(c, "--per-track") == "40" and
               _opt(c, "--seed") == "0" for c in selftrain)
    packages = selftrain[0][selftrain[0].index("--packages") + 1:selftrain[0].index("--per-track")]
    assert packages == ["wesnoth-1.16-music", "warzone2100-music", "supertux-data"]
    (musicnn,) = [c for c in calls if c[0] == "musicnn"]
    assert calls.index(["setup_teacher", env["TEACHER_VENV"]]) < calls.index(musicnn)
    assert musicnn[1:4] == ["-m", "training.teacher", "data/corpus_selftrain/clips.csv"]
    assert calls.index(selftrain[0]) < calls.index(musicnn) < calls.index(selftrain[1])
    assert "--teacher-tags" not in selftrain[0] and _opt(selftrain[0], "--manifest") == "manifest_ours.csv"
    assert _opt(selftrain[1], "--teacher-tags") == "data/corpus_selftrain/musicnn.csv"
    assert _opt(selftrain[1], "--max-uncertain") == "3" and "--reuse" in selftrain[1] and "--manifest" not in selftrain[1]
    stage5 = trains[3]
    assert _opt(stage5, "--init") == stage3  # stage 3's model, as stage 4's
    assert stage5[3:stage5.index("--val")] == [f"data/{s}" for s in STAGE4_SETS + STAGE5_SETS]
    assert stage5[stage5.index("--val"):] == [a if a != "runs/stage4" else "runs/stage5"
                                              for a in stage4[stage4.index("--val"):]]  # stage 4's line otherwise
    built = {Path(_opt(c, "--out")).name: c for c in calls[calls.index(wise):calls.index(stage5)] if "--out" in c}
    assert set(STAGE5_SETS) <= set(built)
    assert built["corpus_genres"][1:] == ["training.genres", "--out", "data/corpus_genres", "--jobs", "2", "--reuse",
                                          "--clips", "1600", "--seed", "51", "--other", "0.3"]
    assert built["corpus_rock"][1:] == ["training.rock", "--out", "data/corpus_rock", "--jobs", "2", "--reuse",
                                        "--clips", "1500", "--seed", "0"]
    mix = built["corpus_salamander_mix"]
    assert mix[mix.index("--sources"):] == [
        "--sources", "fluidr3,freepats,sfgmbank,synth,generaluser,salamander", "--seed", "42", "--mixtures", "600",
        "--kinds", "mix", "--effects", "production", "--score-cache", "data/corpus_train/score_cache.json"]
    # the published model: the stage-5 fine-tune itself (FINAL_WISE_SHARE empty), its track threshold tuned
    (tune5,) = [c for c in calls if c[1:2] == ["training.tune_tracks"] and _opt(c, "--write") == "runs/stage5_tracks"]
    assert tune5[2] == _model(repo, "runs/stage5") and not (repo / "runs/stage5_wise").exists()
    heldout = [c for c in calls if c[1:2] == ["training.heldout"]]
    assert [_opt(c, "--json") for c in heldout] == [f"runs/heldout/stage{n}.json" for n in (3, 4, 5)]
    assert [c[2] for c in heldout] == [stage3, stage4_model, _model(repo, "runs/stage5_tracks")]
    (publish,) = [c for c in calls if c[1:2] == ["training.publish"]]
    assert publish[2] == "runs/stage5_tracks" and _opt(publish, "--heldout") == "runs/heldout/stage5.json"
    assert {f"data/{s}" for s in STAGE4_SETS + STAGE5_SETS} <= set(publish)
    assert calls.index(publish) == len(calls) - 1 and calls.index(tune5) > calls.index(stage5)


def test_a_final_share_publishes_the_wise_and_reruns_only_the_final_stages(tmp_path):
    repo, env = _repo(tmp_path)
    assert _rebuild(repo, env).returncode == 0
    before = len(_calls(env))
    done = _rebuild(repo, env, FINAL_WISE_SHARE="0.7")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = dict(_stage_lines(done.stdout))
    k = STAGES.index("stage5_final")
    assert all(lines[s] == " (kept)" for s in STAGES[:k]) and all(lines[s] == "" for s in STAGES[k:])
    again = _calls(env)[before:]
    (wise5,) = [c for c in again if c[1:2] == ["training.wise"]]
    assert wise5[2:4] == [_model(repo, "runs/bundled_tracks"), _model(repo, "runs/stage5")]
    assert _opt(wise5, "--share") == "0.7" and _opt(wise5, "--out") == "runs/stage5_wise" and "--only" in wise5
    (tune5,) = [c for c in again if c[1:2] == ["training.tune_tracks"]]
    assert tune5[2] == _model(repo, "runs/stage5_wise") and _opt(tune5, "--write") == "runs/stage5_tracks"
    (publish,) = [c for c in again if c[1:2] == ["training.publish"]]
    assert publish[2] == "runs/stage5_tracks"

    back = _rebuild(repo, env, FINAL_WISE_SHARE="")  # empty again: the fine-tune itself
    assert back.returncode == 0, back.stderr[-3000:]
    later = _calls(env)[before + len(again):]
    assert not [c for c in later if c[1:2] == ["training.wise"]] and not (repo / "runs/stage5_wise").exists()
    (tune5,) = [c for c in later if c[1:2] == ["training.tune_tracks"]]
    assert tune5[2] == _model(repo, "runs/stage5") and (repo / "runs/stage5/track_tuning.txt").exists()


def test_a_run_killed_in_stage_4_resumes_there_and_adds_up_the_times(tmp_path):
    repo, env = _repo(tmp_path)
    killed = _rebuild(repo, env, FAKE_FAIL="--out runs/stage4 ")
    assert killed.returncode != 0
    lines = _stage_lines(killed.stdout)
    assert [n for n, _ in lines] == STAGES[:STAGES.index("stage4_finetune") + 1]
    assert lines[-1][1] == " (failed, exit 1)"
    before = len(_calls(env))

    resumed = _rebuild(repo, env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    lines = dict(_stage_lines(resumed.stdout))
    assert list(lines) == STAGES
    k = STAGES.index("stage4_finetune")
    assert all(lines[s] == " (kept)" for s in STAGES[:k]) and all(lines[s] == "" for s in STAGES[k:])
    again = _calls(env)[before:]
    assert again[0][1:3] == ["tagger", "train"] and _opt(again[0], "--out") == "runs/stage4"  # nothing before it
    record = json.loads((repo / "runs/stage_times.json").read_text())["stages"]
    assert record["stage4_finetune"]["runs"] == 2 and record["base_training"]["runs"] == 1
    assert re.search(r"^stage4_finetune\s+\d+\s+2\s+done$", resumed.stdout, re.M)

    third = _rebuild(repo, env)  # all done: every stage kept, no command run
    assert third.returncode == 0 and all(note == " (kept)" for _, note in _stage_lines(third.stdout))
    assert len(_calls(env)) == before + len(again)


def test_a_changed_stage_4_corpus_line_reruns_stage_4_and_after_only(tmp_path):
    repo, env = _repo(tmp_path)
    assert _rebuild(repo, env).returncode == 0
    script = repo / "training/rebuild.sh"
    text = script.read_text()
    line = '    "corpus_voice_train build_corpus'
    assert line in text
    script.write_text(text.replace(line, '    "corpus_more build_corpus --sources generaluser --seed 40 --mixtures 10 --kinds mix"\n' + line))
    done = _rebuild(repo, env)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = dict(_stage_lines(done.stdout))
    k = STAGES.index("stage4_corpora")
    assert all(lines[s] == " (kept)" for s in STAGES[:k]) and all(lines[s] == "" for s in STAGES[k:])
    stage4, stage5 = [c for c in _calls(env) if c[1:3] == ["tagger", "train"]][-2:]
    assert "data/corpus_more" in stage4 and _opt(stage4, "--out") == "runs/stage4"
    assert "data/corpus_more" in stage5 and _opt(stage5, "--out") == "runs/stage5"  # stage 5 trains on stage 4's too


def test_fresh_rebuilds_cut_the_clips_again_and_musicnn_tags_them_from_scratch(tmp_path):
    repo, env = _repo(tmp_path)
    assert _rebuild(repo, env).returncode == 0
    tags = repo / "data/corpus_selftrain/musicnn.csv"
    assert tags.read_text().count("clips/a.flac") == 1
    done = _rebuild(repo, env, FRESH="1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert tags.read_text().count("clips/a.flac") == 1  # the old clips' tags went with them
    assert len([c for c in _calls(env) if c[0] == "setup_teacher"]) == 1  # the venv was there
