"""training/stages.py: stage times kept across killed runs, done stages kept, later stages rerun."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from training import stages


def _run(record: Path, name: str, run: str, code: str, key: str = "k", capsys=None) -> tuple[int, str]:
    rc = stages.main(["run", "--file", str(record), "--run", run, "--key", key, name, "--",
                      sys.executable, "-c", code])
    return rc, capsys.readouterr().out if capsys else ""


def test_a_stage_that_ends_well_is_timed_recorded_and_then_kept(tmp_path, capsys):
    record = tmp_path / "stage_times.json"
    out_dir = tmp_path / "made"
    code = (f"import os, pathlib; pathlib.Path({str(out_dir)!r}).mkdir(); "
            f"open(os.environ['STAGE_OUTPUTS'], 'a').write({str(out_dir)!r} + '\\n')")
    rc, out = _run(record, "corpora", "run1", code, capsys=capsys)
    assert rc == 0
    assert out.startswith("== stage corpora: ") and "s (this run)" in out and "s in all" in out
    entry = json.loads(record.read_text())["stages"]["corpora"]
    assert entry["runs"] == 1 and entry["done"]["outputs"] == [str(out_dir)]

    rc, out = _run(record, "corpora", "run2", "raise SystemExit('must not run')", capsys=capsys)
    assert rc == 0 and out.strip().endswith("(kept)") and "== stage corpora: 0 s (this run)" in out
    assert json.loads(record.read_text())["stages"]["corpora"]["runs"] == 1  # a kept stage is no run


def test_a_failed_stage_is_not_done_and_its_seconds_add_up_over_runs(tmp_path, capsys):
    record = tmp_path / "stage_times.json"
    rc, out = _run(record, "train", "run1", "raise SystemExit(3)", capsys=capsys)
    assert rc == 3 and "(failed, exit 3)" in out
    data = json.loads(record.read_text())
    assert data["stages"]["train"]["done"] is None
    data["stages"]["train"]["seconds"] = 100.0  # as if the killed run had spent 100 s
    record.write_text(json.dumps(data))
    rc, out = _run(record, "train", "run2", "pass", capsys=capsys)
    assert rc == 0 and "s in all" in out
    entry = json.loads(record.read_text())["stages"]["train"]
    assert entry["runs"] == 2 and entry["done"] and 100.0 <= entry["seconds"] < 160
    assert "== stage train: " in out and out.split("s (this run), ")[1].startswith("10")  # 100 s + this run's


def test_a_stage_after_one_that_ran_is_run_again(tmp_path, capsys):
    record = tmp_path / "stage_times.json"
    for name in ("a", "b"):
        assert _run(record, name, "run1", "pass", capsys=capsys)[0] == 0
    # run2: a kept, b kept
    assert "(kept)" in _run(record, "a", "run2", "pass", capsys=capsys)[1]
    assert "(kept)" in _run(record, "b", "run2", "pass", capsys=capsys)[1]
    # run3: a's commands changed, so it runs, and b after it runs too
    assert "(kept)" not in _run(record, "a", "run3", "pass", key="other", capsys=capsys)[1]
    assert "(kept)" not in _run(record, "b", "run3", "pass", capsys=capsys)[1]
    assert json.loads(record.read_text())["stages"]["b"]["runs"] == 2


def test_a_stage_after_one_that_ran_in_a_killed_run_is_run_again(tmp_path, capsys):
    """Run B reruns s1 (its key changed) and is killed before s2 starts: in run C, s1 is
    kept but s2, which finished before s1's new finish, must run again."""
    record = tmp_path / "stage_times.json"
    ok = "pass"
    for name in ("s1", "s2"):
        assert _run(record, name, "A", ok, capsys=capsys)[0] == 0
    assert _run(record, "s1", "B", ok, key="k2", capsys=capsys)[0] == 0  # killed here, before s2
    rc, out = _run(record, "s1", "C", "raise SystemExit('must not run')", key="k2", capsys=capsys)
    assert rc == 0 and out.strip().endswith("(kept)")
    rc, out = _run(record, "s2", "C", ok, capsys=capsys)
    assert rc == 0 and "(kept)" not in out
    assert _run(record, "s1", "E", "raise SystemExit('must not run')", key="k2", capsys=capsys)[1].strip().endswith("(kept)")
    rc, out = _run(record, "s2", "E", "raise SystemExit('must not run')", capsys=capsys)
    assert rc == 0 and out.strip().endswith("(kept)")


def test_a_done_stage_whose_output_is_gone_runs_again(tmp_path, capsys):
    record = tmp_path / "stage_times.json"
    made = tmp_path / "corpus"
    code = (f"import os, pathlib; pathlib.Path({str(made)!r}).mkdir(exist_ok=True); "
            f"open(os.environ['STAGE_OUTPUTS'], 'a').write({str(made)!r} + '\\n')")
    _run(record, "corpora", "run1", code, capsys=capsys)
    made.rmdir()
    rc, out = _run(record, "corpora", "run2", code, capsys=capsys)
    assert rc == 0 and "(kept)" not in out and made.is_dir()


def test_the_table_lists_each_stage_and_the_total(tmp_path, capsys):
    record = tmp_path / "stage_times.json"
    record.write_text(json.dumps({"stages": {
        "setup": {"seconds": 12.0, "runs": 1, "done": {"key": "x", "outputs": []}},
        "base_training": {"seconds": 3600.4, "runs": 3, "done": None}}, "ran_in": "r"}))
    assert stages.main(["table", "--file", str(record)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["setup", "12", "1", "done"]
    assert lines[2].split() == ["base_training", "3600", "3", "not", "done"]
    assert lines[3].split()[:2] == ["total", "3612"] and "1 h 00 min 12 s" in lines[3]


@pytest.mark.parametrize("argv", [["run", "--file", "x", "--run", "r", "name"], ["run", "--file", "x", "--run", "r", "n", "--"]])
def test_run_needs_a_command(argv):
    with pytest.raises(SystemExit):
        stages.main(argv)
