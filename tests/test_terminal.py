"""What a person sees on the terminal: each file's result as it finishes, a summary that
names every file written, ``tagger --version``, and ``tagger info`` at 80 columns (short
by default, the whole card with ``--full`` and in ``weights/MODEL_CARD.md``)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from test_cli import read_csv
from test_info import _model as card_test_model

from tagger import __version__
from tagger.card import card_dict, card_markdown
from tagger.weights import bundled_model_path, read_header

REPO = Path(__file__).resolve().parent.parent


def run80(*args: str) -> subprocess.CompletedProcess:
    """The CLI as on an 80-column terminal."""
    env = {**os.environ, "COLUMNS": "80", "LINES": "50"}
    return subprocess.run([sys.executable, "-m", "tagger", *args], capture_output=True, text=True, timeout=300, env=env)


def test_each_files_result_as_it_finishes(tiny_model, library, tmp_path):
    report = tmp_path / "r.csv"
    proc = run80("scan", str(library), "--model", str(tiny_model), "--csv", str(report), "--jobs", "1")
    assert proc.returncode == 1, proc.stderr  # the library has bad files
    lines = proc.stderr.splitlines()
    for row in read_csv(report):
        name = Path(row["path"]).name
        if row["status"] == "ok":
            # the row's labels, best first, with their scores: "drums 0.93, bass 0.71"
            expected = ", ".join(f"{label} {float(row[label]):.2f}" for label in row["instruments"].split(";") if label)
            assert any(line.endswith(f"{name}: {expected or 'no instrument'}") for line in lines), (name, expected, proc.stderr)
        else:
            assert any(line.startswith("error: ") and name in line and row["error"][:30] in line for line in lines), proc.stderr


def test_quiet_shows_only_errors_and_json_keeps_stdout_clean(tiny_model, library, tmp_path):
    quiet = run80("scan", str(library), "--model", str(tiny_model), "--csv", str(tmp_path / "q.csv"), "--jobs", "1", "--quiet")
    rows = read_csv(tmp_path / "q.csv")
    errors = [r for r in rows if r["status"] == "error"]
    assert len([line for line in quiet.stderr.splitlines() if line.strip()]) == len(errors), quiet.stderr
    assert "tone.wav" not in quiet.stderr
    js = run80("scan", str(library), "--model", str(tiny_model), "--csv", str(tmp_path / "j.csv"), "--jobs", "1", "--json")
    assert [json.loads(line)["path"] for line in js.stdout.splitlines()] == [r["path"] for r in read_csv(tmp_path / "j.csv")]
    assert "tone.wav: " in js.stderr  # the per-file lines go to stderr, never into the JSON


def test_the_summary_names_every_file_written(tiny_model, library, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    report, timeline, html = out / "r.csv", out / "seg.csv", out / "r.html"
    proc = run80("scan", str(library / "tone.wav"), "--model", str(tiny_model), "--csv", str(report), "--segments", str(timeline),
                 "--html", str(html), "--jobs", "1")
    assert proc.returncode == 0, proc.stderr
    wrote = [line for line in proc.stderr.splitlines() if line.startswith("wrote ")]
    assert wrote == [f"wrote report: {report}", f"wrote timeline: {timeline}", f"wrote HTML report: {html}"], proc.stderr
    assert report.exists() and timeline.exists() and html.exists()
    # --html alone: its temporary timeline is no file of the user's
    proc = run80("scan", str(library / "tone.wav"), "--model", str(tiny_model), "--csv", str(report), "--html", str(html), "--jobs", "1")
    assert [line for line in proc.stderr.splitlines() if line.startswith("wrote ")] == [
        f"wrote report: {report}", f"wrote HTML report: {html}"], proc.stderr


def test_version_names_the_bundled_model():
    proc = run80("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"tagger {__version__} (model {read_header(bundled_model_path()).version})\n"


def _reads_at_80_columns(text: str) -> None:
    assert all(len(line) <= 80 for line in text.splitlines()), max(text.splitlines(), key=len)
    assert "…" not in text  # no table cell collapsed to "h…"


def test_info_reads_well_at_80_columns():
    proc = run80("info")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    _reads_at_80_columns(out)
    assert len(out.splitlines()) <= 100
    header = read_header(bundled_model_path())
    for label in header.labels:
        assert f"{label} " in out
    assert f"{header.thresholds[header.labels[0]]:.3f}" in out
    assert f"{header.aggregation['track_threshold']:.3f}" in out
    test = header.card["test"]
    assert f"{test['mAP']:.3f}" in out and f"{test['top1_single']:.3f}" in out  # the key held-out figures
    assert "known weaknesses" in out and "tagger info --full" in out


def test_info_full_holds_everything_and_still_reads_at_80_columns(tmp_path):
    proc = run80("info", "--full")
    assert proc.returncode == 0, proc.stderr
    _reads_at_80_columns(proc.stdout)
    assert len(proc.stdout.splitlines()) > len(run80("info").stdout.splitlines())
    proc = run80("info", "--full", "--model", str(card_test_model(tmp_path)))
    _reads_at_80_columns(proc.stdout)
    for text in ("corpus_train", "800 segments/s", "ablation", "base: change none · test micro-F1 0.745"):
        assert text in proc.stdout, text


def test_model_card_md_is_current_with_the_bundled_card():
    """weights/MODEL_CARD.md is what tagger.card.write_model_card writes from the bundled weights."""
    path = bundled_model_path()
    expected = card_markdown(card_dict(read_header(path), path.name, __version__))
    assert (REPO / "weights" / "MODEL_CARD.md").read_text(encoding="utf-8") == expected, (
        'stale: python -c "from tagger.card import write_model_card; write_model_card()"')


def test_model_card_md_holds_what_info_full_shows(tmp_path):
    model = card_test_model(tmp_path)
    text = card_markdown(card_dict(read_header(model), model.name, __version__))
    for part in ("# Model card: cardtest-", "| piano | 0.300 | 0.910 |", "| heldout voice only |",
                 "- **voice heldout** (espeak-ng voices never heard in training)", "Confuses saxophone with voice.",
                 "`corpus_train` · 1,200 clips", "| base | **none** | 0.745 |"):
        assert part in text, part
    assert "nan" not in text
