"""The command line end to end, in a subprocess, as a user runs it."""
from __future__ import annotations

import csv
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import mutagen
import numpy as np

from audio_helpers import noise, tone, write_audio
from tagger.decode import decode
from tagger.labels import BUNDLED_LABELS

EXPECTED_COLUMNS = ["path", "status", "error", "duration_s", "segments", "instruments", *BUNDLED_LABELS,
                    "model", "tags", "previous_instruments"]


def tagger(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tagger", *args], capture_output=True, text=True, timeout=300, **kw)


# The CLI with every tag write slowed down, so a signal sent after the first rows lands
# while the run is still going, however fast the machine (a bare run of these tiny
# files can finish between two polls; CI once saw exactly that).
SLOW_WRITES_CLI = """
import sys, time
import tagger.scan
write = tagger.scan.write_instruments
def slow_write(*args, **kwargs):
    time.sleep(DELAY)
    return write(*args, **kwargs)
tagger.scan.write_instruments = slow_write
from tagger.cli import app
app(prog_name="tagger", args=sys.argv[1:])
"""


def slow_writes_cli(delay: float) -> list[str]:
    return [sys.executable, "-c", SLOW_WRITES_CLI.replace("DELAY", repr(delay))]


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_scan_writes_the_csv_contract_and_exits_1_on_bad_files(tiny_model, library, tmp_path):
    out = tmp_path / "report.csv"
    proc = tagger("scan", str(library), "--model", str(tiny_model), "--csv", str(out), "--jobs", "2")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""  # progress and summary go to stderr
    assert "garbage.mp3: not an audio file" in proc.stderr and "files ok" in proc.stderr
    with open(out, newline="", encoding="utf-8") as f:
        assert next(csv.reader(f)) == EXPECTED_COLUMNS
    rows = read_csv(out)
    assert len(rows) == 6  # every audio file found, good or bad; notes.txt is not audio
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 3 and all(r["tags"] == "dry-run" and r["error"] == "" for r in ok)
    for r in ok:
        scores = {label: float(r[label]) for label in BUNDLED_LABELS}
        assert all(0 <= s <= 1 for s in scores.values())
        ranked = r["instruments"].split(";") if r["instruments"] else []
        assert [scores[l] for l in ranked] == sorted((scores[l] for l in ranked), reverse=True)
    bad = [r for r in rows if r["status"] == "error"]
    assert all(r["error"] and r["tags"] == "" and "\n" not in r["error"] for r in bad)


def test_exit_0_json_lines_and_usage_errors(tiny_model, tmp_path):
    write_audio(tmp_path / "lib" / "a.wav", tone(3.0))
    write_audio(tmp_path / "lib" / "b.wav", noise(3.0))
    proc = tagger("scan", str(tmp_path / "lib"), "--model", str(tiny_model), "--csv", str(tmp_path / "r.csv"), "--json", "--jobs", "1")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [Path(l["path"]).name for l in lines] == ["a.wav", "b.wav"] and all(l["status"] == "ok" for l in lines)
    assert tagger("scan", str(tmp_path / "missing"), "--model", str(tiny_model)).returncode == 2
    bad_model = tagger("scan", str(tmp_path / "lib"), "--model", str(tmp_path / "nope.safetensors"))
    assert bad_model.returncode == 2 and "weights file not found" in bad_model.stderr
    assert tagger("scan", str(tmp_path / "lib"), "--threshold", "2").returncode == 2
    assert tagger("scan", str(tmp_path / "lib"), "--device", "cuda", "--model", str(tiny_model)).returncode == (0 if _has_cuda() else 2)


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def test_info_shows_the_card(tiny_model):
    proc = tagger("info", "--model", str(tiny_model), "--json")
    assert proc.returncode == 0
    card = json.loads(proc.stdout)
    assert card["labels"] == list(BUNDLED_LABELS) and card["model"].startswith("tiny-")
    assert "piano" in tagger("info", "--model", str(tiny_model)).stdout


def test_kill_during_write_tags_loses_nothing_and_the_next_run_finishes(tiny_model, tmp_path):
    """SIGKILL a --write-tags run at random moments; every file keeps its audio; a rerun completes."""
    lib = tmp_path / "lib"
    for i in range(12):
        write_audio(lib / f"{i:02d}.flac", tone(6.0, 110 * (i + 1)) + noise(6.0, 0.02, seed=i))
    for i in range(4):  # an ID3 container too
        write_audio(lib / f"w{i}.wav", tone(4.0, 200 + 50 * i))
    reference = {p: decode(p, 22050) for p in lib.iterdir()}
    report = tmp_path / "r.csv"
    args = [sys.executable, "-m", "tagger", "scan", str(lib), "--model", str(tiny_model), "--csv", str(report),
            "--write-tags", "--threshold", "0", "--top-k", "2", "--jobs", "1", "--quiet"]
    rng = random.Random(0)
    killed = 0
    for rows_before_kill in (1, 4, 7, 10, 13):  # every run rewrites every file (--no-resume)
        report.unlink(missing_ok=True)
        # writes slowed by 20 ms, so the last files cannot all finish before the kill
        proc = subprocess.Popen([*slow_writes_cli(0.02), *args[3:], "--no-resume"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None and (not report.exists() or len(read_csv(report)) < rows_before_kill):
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.03))  # land anywhere inside the next file's work
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
        for p, audio in reference.items():
            assert np.array_equal(decode(p, 22050), audio), p  # never a broken file
        rows = read_csv(report)  # the report is valid CSV of what was done
        assert all(r["status"] in ("ok", "error", "skipped") for r in rows)
    assert killed == 5
    final = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert {r["tags"] for r in read_csv(report)} == {"written"}
    for p in lib.iterdir():
        assert not p.name.startswith(".")  # no leftover temp files
        assert len(mutagen.File(p).tags.getall("TXXX:INSTRUMENTS")[0].text[0].split("; ") if p.suffix == ".wav" else mutagen.File(p)["INSTRUMENTS"]) == 2


def test_ctrl_c_during_write_tags_stops_cleanly(tiny_model, tmp_path):
    lib = tmp_path / "lib"
    for i in range(20):
        write_audio(lib / f"{i:02d}.flac", tone(6.0, 100 + 40 * i))
    reference = {p: decode(p, 22050) for p in lib.iterdir()}
    report = tmp_path / "r.csv"
    args = ["scan", str(lib), "--model", str(tiny_model), "--csv", str(report), "--write-tags", "--jobs", "1", "--quiet"]
    proc = subprocess.Popen([*slow_writes_cli(0.25), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and (not report.exists() or len(read_csv(report)) < 3):
        time.sleep(0.05)  # wait until a few files are done
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted after" in stderr and "Traceback" not in stderr
    assert not [p for p in lib.iterdir() if p.name.startswith(".")]  # no temp file left
    for p, audio in reference.items():
        assert np.array_equal(decode(p, 22050), audio)
    done = len(read_csv(report))
    assert 3 <= done < 20
    final = subprocess.run([sys.executable, "-m", "tagger", *args], capture_output=True, text=True, timeout=300)
    assert final.returncode == 0
    rows = read_csv(report)
    assert len(rows) == 20 and sum(r["status"] == "skipped" for r in rows) >= done


def test_weights_that_do_not_fit_their_config_fail_the_scan_with_exit_2(tmp_path):
    """The header is fine, so the scan starts; the model, loading meanwhile, fails: one line, exit 2."""
    from tagger.config import FrontendConfig, ModelConfig
    from tagger.models import Tagger
    from tagger.weights import Checkpoint, save_checkpoint

    labels = tuple(BUNDLED_LABELS)
    wide = Tagger(FrontendConfig(), ModelConfig("resnet", labels, width=16))
    misfit = Checkpoint(FrontendConfig(), ModelConfig("resnet", labels, width=8), wide.classifier.state_dict(),
                        {label: 0.5 for label in labels}, name="misfit")
    model = save_checkpoint(misfit, tmp_path / "model")
    for i in range(3):
        write_audio(tmp_path / "lib" / f"{i}.wav", tone(4.0, 200 + 100 * i))
    proc = tagger("scan", str(tmp_path / "lib"), "--model", str(model), "--csv", str(tmp_path / "r.csv"), "--jobs", "1")
    assert proc.returncode == 2, proc.stderr
    assert "weights do not match their config" in proc.stderr and "Traceback" not in proc.stderr


REPO = Path(__file__).resolve().parent.parent
# Never needed before the first file decodes (in the driver) or at all (in a decoding worker).
HEAVY = ("torch", "librosa", "numba", "scipy", "matplotlib", "pandas", "pyarrow", "selenium", "sympy")
CLI_ONLY = ("typer", "rich", "pydantic", "tagger.cli", "tagger.html_report", "tagger.card")


def imported(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport sys; print('\\nimported:', *(m for m in {modules!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1].split()[1:]


def test_spawned_scan_workers_import_neither_the_cli_nor_torch(tmp_path):
    """A decoding worker is spawned: it re-runs the top of the installed `tagger` script as
    __mp_main__ (multiprocessing's spawn), then imports tagger.scan to unpickle its task. The
    script is the one pip writes for pyproject's entry point (re-install to refresh .venv/bin/tagger)."""
    import re

    entry = re.search(r'^tagger = "([\w.]+):(\w+)"', (REPO / "pyproject.toml").read_text(), re.M)
    script = tmp_path / "tagger"
    script.write_text(f"import re\nimport sys\nfrom {entry[1]} import {entry[2]}\nif __name__ == '__main__':\n"
                      f"    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n    sys.exit({entry[2]}())\n")
    worker = f"import multiprocessing.spawn; multiprocessing.spawn.import_main_path({str(script)!r}); import tagger.scan"
    assert imported(worker, HEAVY + CLI_ONLY) == []


def test_help_loads_no_audio_or_model_stack():
    code = "from tagger.cli import app\ntry:\n    app(prog_name='tagger', args=['--help'])\nexcept SystemExit:\n    pass"
    assert imported(code, HEAVY + ("numpy", "av", "mutagen", "tagger.scan")) == []


def test_the_cli_needs_no_click_of_its_own():
    """`make demo` installs tagger without extras, where `click` is absent (typer carries its own)."""
    code = "import sys; sys.modules['click'] = None; import tagger.cli"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr
