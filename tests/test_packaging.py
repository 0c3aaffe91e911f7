"""`pip install .` makes the Python API, the CLI and the app usable outside the checkout."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_package_installs_and_its_commands_run_outside_the_checkout(tmp_path):
    # Built from a copy: setuptools reuses a build/ folder, whose stale files would hide a package
    # left out of the configuration (and building in the checkout would leave one there).
    source_tree = tmp_path / "source"
    shutil.copytree(REPO, source_tree, ignore=shutil.ignore_patterns(
        ".git", "build", "*.egg-info", "tests", "bench", "assets", "docs", "__pycache__"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(source_tree),
                    "-w", str(wheels)], check=True, cwd=tmp_path, timeout=300)
    wheel = next(wheels.glob("chatvlmllm-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
        metadata = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    # `pip install .` is the CPU install; the VLM stack comes with the `vlm` extra only.
    requires = [line.split(": ", 1)[1] for line in metadata.splitlines() if line.startswith("Requires-Dist: ")]
    assert "Provides-Extra: vlm" in metadata
    assert {r.split(";")[0].split("<")[0].split(">")[0] for r in requires if 'extra == "vlm"' in r} == {
        "torch", "torchvision", "transformers", "accelerate"}
    assert not any(r.startswith(("torch", "transformers")) and "extra ==" not in r for r in requires)
    # Every subpackage of the source tree is in the wheel (the evaluation package once was not).
    source = {str(p.relative_to(REPO)) for top in ("pipelines", "ui") for p in (REPO / top).rglob("*.py")}
    assert source and source | {"app.py"} <= names, sorted(source - names)
    assert "chatvlmllm = pipelines.cli:main" in entry_points and "chatvlmllm-app = app:main" in entry_points
    assert not any(n.startswith(("tests/", "bench/")) for n in names)

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(target)}
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    imported = subprocess.run([sys.executable, "-c", "import pipelines; print(pipelines.__file__)"], cwd=outside,
                              env=env, capture_output=True, text=True, check=True)
    assert imported.stdout.strip().startswith(str(target))
    helped = subprocess.run([str(target / "bin" / "chatvlmllm"), "--help"], cwd=outside, env=env,
                            capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "parse" in helped.stdout, helped.stderr
