"""README's examples run as written: its offline command lines (`python -m pipelines ...` without
a server, outputs sent to a temporary folder) and its first Python example, from the repository's
root. (The gradio_client example runs in tests/test_e2e_app.py; the server and VLM examples need
a server or weights this machine lacks.)"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def offline_commands() -> list[str]:
    commands = []
    for block in blocks("bash"):
        for command in block.replace("\\\n", " ").splitlines():
            command = command.split("  #")[0].strip()
            if command.startswith("python -m pipelines ") and "--base-url" not in command:
                commands.append(" ".join(command.split()))
    return commands


def test_readme_has_the_offline_examples():
    assert len(offline_commands()) == 3


@pytest.mark.parametrize("command", offline_commands())
def test_readme_command_runs(command, tmp_path):
    from tests.test_languages import needs_russian

    if "--language" in command and needs_russian.args[0]:
        pytest.skip(needs_russian.kwargs["reason"])
    argv = command.replace("results/", f"{tmp_path}/results/").split()
    done = subprocess.run([sys.executable, *argv[1:]], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    written = sorted(p.relative_to(tmp_path / "results").as_posix() for p in (tmp_path / "results").rglob("*") if p.is_file())
    if " parse " in command:
        stem = Path(argv[4]).stem
        assert f"{stem}/page_001.md" in written and f"{stem}/page_001.json" in written
    else:
        assert {"eval/scores.json", "eval/scores.md"} <= set(written)


def test_readme_python_example_runs(capsys, monkeypatch):
    code = blocks("python")[0]
    assert 'load_pipeline("classic")' in code
    monkeypatch.chdir(REPO)  # the example names files in assets/
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the project's own README
    assert len(namespace["doc"].pages) == 2 and "INVOICE" in namespace["text"]
    assert "Adaptive Lattice Smoothing" in capsys.readouterr().out
