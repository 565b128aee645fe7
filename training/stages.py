"""Stage times of a long, resumable pipeline (``make weights``), kept across killed runs.

    python -m training.stages run --file runs/stage_times.json --run ID --key TEXT NAME -- CMD...
    python -m training.stages table --file runs/stage_times.json

``run`` runs CMD as stage NAME and, when it ends (done, failed or interrupted), prints
``== stage NAME: N s (this run), M s in all`` and adds its seconds to NAME's total in
the file, so a pipeline killed and resumed three times still reports what each stage cost
in all. The seconds are written every few seconds while CMD runs, so even a kill -9 loses
only the last few.

A stage is *kept* (CMD not run, ``(kept)`` printed, ~0 s) when it finished before with
the same ``--key`` (the pipeline passes the stage's own commands and settings), every
output it recorded still exists, and it finished after every stage met before it in this
pipeline run (``--run``: one id per run of the pipeline) last finished: a stage that ran
since may have changed what later stages read, whether it ran in this run or in a killed
one (each finish gets the next number of a counter kept in the file). CMD records its
outputs by appending one path a line to the file named by ``$STAGE_OUTPUTS``. A stage
that fails or is interrupted is not done: the next run runs it again, and the commands'
own stamps (corpus ``build.json``, a training run's ``state.pt``) let it continue where
it stopped.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TICK_S = 5.0  # how often a running stage's seconds are written


def load(path: Path) -> dict:
    """The record: ``{"stages": {name: {"seconds", "runs", "done"}}, "finished": the count of
    stage finishes, "run": {"id", "seq"}}`` (``done`` holds the key, the outputs and the
    finish's number ``seq``; ``run`` the latest finish met in the pipeline run ``id``)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data.setdefault("stages", {})
    data.setdefault("finished", 0)
    data.setdefault("run", {"id": None, "seq": -1})
    return data


def _floor(data: dict, run: str) -> int:
    """The latest finish among the stages met so far in pipeline run ``run``."""
    return int(data["run"]["seq"]) if data["run"].get("id") == run else -1


def save(path: Path, data: dict) -> None:
    """Write the record atomically (a kill never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_kept(data: dict, name: str, key: str, run: str) -> bool:
    """True when stage ``name`` finished with ``key``, its outputs are all there, and it
    finished no earlier than every stage met before it in pipeline run ``run``."""
    done = data["stages"].get(name, {}).get("done")
    if not done or done.get("key") != digest(key) or int(done.get("seq", 0)) < _floor(data, run):
        return False
    return all(Path(p).exists() for p in done.get("outputs", []))


class Stage:
    """One stage's entry in the record file, its seconds written as it runs."""

    def __init__(self, path: Path, name: str, run: str):
        self.path, self.name, self.run = path, name, run
        self.lock = threading.Lock()
        data = load(path)
        entry = data["stages"].setdefault(name, {"seconds": 0.0, "runs": 0, "done": None})
        self.before = float(entry["seconds"])
        self.t0 = time.monotonic()
        entry["runs"] = int(entry["runs"]) + 1
        entry["done"] = None  # not done until it ends well
        save(path, data)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def write(self, done: dict | None = None) -> float:
        """Store the total so far (and ``done`` when it finished); return this run's seconds."""
        with self.lock:
            seconds = self.elapsed()
            data = load(self.path)
            entry = data["stages"].setdefault(self.name, {"seconds": 0.0, "runs": 1, "done": None})
            entry["seconds"] = round(self.before + seconds, 1)
            if done is not None:  # a finish: the next number, the latest of this pipeline run
                data["finished"] = int(data["finished"]) + 1
                done = {**done, "seq": data["finished"]}
                data["run"] = {"id": self.run, "seq": data["finished"]}
            entry["done"] = done
            save(self.path, data)
            return seconds


def line(name: str, this_run: float, in_all: float, note: str = "") -> str:
    return f"== stage {name}: {this_run:.0f} s (this run), {in_all:.0f} s in all{note}"


def run_stage(path: Path, name: str, key: str, run: str, cmd: list[str]) -> int:
    """Run ``cmd`` as stage ``name`` (or keep it); print its time line; return its exit status."""
    data = load(path)
    if is_kept(data, name, key, run):
        seq = int(data["stages"][name]["done"].get("seq", 0))
        data["run"] = {"id": run, "seq": max(_floor(data, run), seq)}
        save(path, data)
        print(line(name, 0, float(data["stages"][name]["seconds"]), " (kept)"), flush=True)
        return 0
    stage = Stage(path, name, run)
    fd, outputs = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.", suffix=".outputs")
    os.close(fd)
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(TICK_S):
            stage.write()

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    child = subprocess.Popen(cmd, env={**os.environ, "STAGE_OUTPUTS": outputs})
    received: list[int] = []

    def forward(signum: int, _frame) -> None:  # pass SIGTERM/SIGHUP on; wait for the child to end
        received.append(signum)
        if child.poll() is None:
            child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, forward)
    rc = child.wait()
    stop.set()
    ticker.join()
    try:
        made = [p for p in Path(outputs).read_text().splitlines() if p.strip()]
    finally:
        Path(outputs).unlink(missing_ok=True)
    ok = rc == 0 and not received
    seconds = stage.write({"key": digest(key), "outputs": sorted(set(made))} if ok else None)
    total = float(load(path)["stages"][name]["seconds"])
    note = "" if ok else (" (interrupted)" if received else f" (failed, exit {rc})")
    print(line(name, seconds, total, note), flush=True)
    if received and rc == 0:
        rc = 128 + received[0]
    return rc


def table(data: dict) -> str:
    """Every stage's seconds and runs, and the total."""
    rows = [(name, float(e["seconds"]), int(e["runs"]), "done" if e.get("done") else "not done")
            for name, e in data["stages"].items()]
    width = max([len("total"), *(len(r[0]) for r in rows)])
    out = [f"{'stage':<{width}}  {'seconds':>8}  {'runs':>4}  state"]
    out += [f"{n:<{width}}  {s:>8.0f}  {r:>4}  {d}" for n, s, r, d in rows]
    total = sum(r[1] for r in rows)
    out.append(f"{'total':<{width}}  {total:>8.0f}        ({hms(total)})")
    return "\n".join(out)


def hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600} h {s % 3600 // 60:02d} min {s % 60:02d} s"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.stages", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    r = sub.add_parser("run", help="run CMD as a stage, or keep it when already done")
    r.add_argument("--file", type=Path, required=True, help="the stage record (JSON)")
    r.add_argument("--run", required=True, help="an id for this run of the pipeline")
    r.add_argument("--key", default="", help="what the stage is made of: its commands and settings")
    r.add_argument("name")
    r.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD...")
    t = sub.add_parser("table", help="print every stage's time and the total")
    t.add_argument("--file", type=Path, required=True)
    args = p.parse_args(argv)
    if args.what == "table":
        print(table(load(args.file)))
        return 0
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        p.error("run needs a command after --")
    return run_stage(args.file, args.name, args.key, args.run, cmd)


if __name__ == "__main__":
    sys.exit(main())
