"""Start-up of tagger: what each entry point imports, and how long the first file waits.

    python scripts/startup.py [--repeats 5] [--tree DIR ...]

Each case runs in a fresh interpreter, ``--repeats`` times; printed are medians of the
process's wall time (spawn to exit) and CPU time (user + system: less moved by a busy
machine), of ``-X importtime``'s total (its top-level imports summed; measured in a
second run, as importtime slows imports down), and which of the modules that matter for
start-up were loaded:

- ``tagger --help`` and ``tagger info`` (the bundled model's card);
- a decoding worker as ``python -m tagger scan`` spawns it (it imports ``tagger.scan`` to
  unpickle its task), and as the installed ``tagger`` script spawns it: multiprocessing's
  spawn first re-runs the top of that script as ``__mp_main__`` (the script pip writes
  for pyproject's entry point; ``.venv/bin/tagger`` is refreshed by re-installing);
- the scan's driver on two short WAV files, from spawn until its first file is handed to
  a decoding worker (torch loads in a thread meanwhile, as in a real scan, so no import
  total is given for it).

``--tree DIR`` (repeatable) measures other checkouts with this same script
(``PYTHONPATH=DIR``), side by side, round by round: ``--tree ../main --tree .`` prints
before and after.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

WATCHED = ("torch", "numpy", "av", "mutagen", "typer", "pydantic", "rich", "sqlite3", "safetensors",
           "tagger.cli", "tagger.scan", "matplotlib", "librosa", "scipy", "pyarrow")
REPORT = f"import sys; print('\\nloaded:', *(m for m in {WATCHED!r} if m in sys.modules), flush=True)"
RUN_CLI = "from tagger.cli import app\ntry:\n    app(prog_name='tagger', args={args!r})\nexcept SystemExit:\n    pass\n"
FIRST_DISPATCH = (  # the driver stops when it hands its first file to a worker
    "import os, tagger.backends\n"
    "def first_file(self, fn, item):\n    " + REPORT.replace("; ", "\n    ") + "\n    os._exit(0)\n"
    "tagger.backends._LocalPool.submit = first_file\n"
)
CONSOLE_SCRIPT = ("import re\nimport sys\nfrom {module} import {attr}\nif __name__ == '__main__':\n"
                  "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n    sys.exit({attr}())\n")


def cases(tree: Path, work: Path) -> dict[str, str]:
    """Case name -> Python code run with ``-c``."""
    entry = re.search(r'^tagger = "([\w.]+):(\w+)"', (tree / "pyproject.toml").read_text(), re.M)
    work.mkdir(parents=True, exist_ok=True)
    script = work / "tagger"
    script.write_text(CONSOLE_SCRIPT.format(module=entry[1], attr=entry[2]))
    lib = work / "lib"
    lib.mkdir(exist_ok=True)
    for name in ("a.wav", "b.wav"):
        with wave.open(str(lib / name), "wb") as w:  # 4 s of silence, 22 050 Hz mono
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(22050), w.writeframes(b"\0\0" * 22050 * 4)
    scan = ["scan", str(lib), "--csv", str(work / "r.csv"), "--no-resume", "--quiet", "--jobs", "2"]
    return {
        "tagger --help": RUN_CLI.format(args=["--help"]) + REPORT,
        "tagger info": RUN_CLI.format(args=["info"]) + REPORT,
        "worker of `python -m tagger`": "import multiprocessing.spawn, concurrent.futures.process, tagger.scan\n" + REPORT,
        f"worker of the `tagger` script ({entry[1]})": (
            f"import multiprocessing.spawn, concurrent.futures.process\nmultiprocessing.spawn.import_main_path({str(script)!r})\n"
            "import tagger.scan\n" + REPORT),
        "scan driver until its first file is handed out": FIRST_DISPATCH + RUN_CLI.format(args=scan),
    }


def run(code: str, tree: Path, importtime: bool) -> dict:
    """Wall and CPU seconds, import total (s, with ``importtime``) and modules loaded of a
    fresh interpreter running ``code``."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    cmd = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", code]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, cwd=tree, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    loaded = [line for line in stdout.splitlines() if line.startswith("loaded:")]
    if not loaded:
        raise RuntimeError(f"case failed (exit {os.waitstatus_to_exitcode(status)}):\n{code}\n{stderr[-2000:]}")
    top = re.findall(r"^import time:\s+\d+ \|\s+(\d+) \| \S", stderr, re.M)  # top-level imports only
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "imports": sum(map(int, top)) / 1e6,
            "loaded": loaded[-1].split()[1:]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tree", type=Path, action="append",
                    help="a checkout to measure; repeat to compare (default: this script's)")
    args = ap.parse_args(argv)
    trees = [t.resolve() for t in args.tree or [Path(__file__).resolve().parent.parent]]
    with tempfile.TemporaryDirectory(prefix="tagger-startup-") as tmp:
        todo = {tree: cases(tree, Path(tmp) / str(i)) for i, tree in enumerate(trees)}
        runs: dict[tuple[int, Path], list[dict]] = {}
        for _ in range(args.repeats):  # round by round, every case of every tree: same load
            for tree, tree_cases in todo.items():
                for i, (name, code) in enumerate(tree_cases.items()):
                    timed = run(code, tree, importtime=False)
                    if not name.startswith("scan driver"):  # there the model's thread imports torch meanwhile
                        timed["imports"] = run(code, tree, importtime=True)["imports"]
                    else:
                        timed["imports"] = None
                    runs.setdefault((i, tree), []).append(timed)
        print(f"start-up, medians of {args.repeats} (load {os.getloadavg()[0]:.1f}); ms")
        print(f"  {'case':<60} {'wall':>6} {'CPU':>6} {'imports':>8}  loaded")
        for i in range(len(next(iter(todo.values())))):
            for tree, tree_cases in todo.items():
                name, timed = list(tree_cases)[i], runs[(i, tree)]
                ms = {k: (f"{1000 * statistics.median(r[k] for r in timed):.0f}" if timed[0][k] is not None else "-")
                      for k in ("wall", "cpu", "imports")}
                where = f" [{tree.name}]" if len(trees) > 1 else ""
                print(f"  {name + where:<60} {ms['wall']:>6} {ms['cpu']:>6} {ms['imports']:>8}  {' '.join(timed[-1]['loaded'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
