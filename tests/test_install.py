"""A non-editable install (a wheel of this clone) finds its bundled weights."""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_a_wheel_install_finds_the_bundled_weights(tmp_path):
    """`pip install /path/to/clone` (no -e) puts the weights under <prefix>/share; before, the
    installed tagger looked only beside its package and found none."""
    # no PYTHONPATH, and away from the clone: pip must not take the clone's egg-info for an install
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = dict(check=True, capture_output=True, cwd=tmp_path, env=env, timeout=300)
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(REPO)], **run)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], **run)
    python = venv / "bin" / "python"
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", *map(str, wheels.glob("*.whl"))], **run)
    # torch and the rest from this interpreter's site-packages, behind the venv's own
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = subprocess.run([str(python), "-c", "import tagger, tagger.weights as w; print(tagger.__file__); "
                           "print(w.bundled_model_path())"], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    package, weights = done.stdout.split()
    assert Path(package).is_relative_to(venv)  # the installed copy, not this clone
    assert Path(weights).is_relative_to(venv / "share" / "instrument-tagger" / "weights")
    version = subprocess.run([str(venv / "bin" / "tagger"), "--version"], capture_output=True, text=True,
                             cwd=tmp_path, env=env, timeout=120)
    assert version.returncode == 0 and "resnet-" in version.stdout, version.stderr
