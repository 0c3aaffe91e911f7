"""README's examples run as written, from the repository's root: its offline command lines
(`python -m pipelines ...` without a server, outputs sent to a temporary folder), the `classic`
Python example, the VLM example (with a tiny random-weight twin in the folder the model would be
loaded from, since no weights can be downloaded here), the curl and gradio_client examples against
the app started on a free port. (The server commands need vLLM or SGLang and a GPU.)"""
from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
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
    assert 'load_pipeline("classic")' in code and len(blocks("python")) == 3
    monkeypatch.chdir(REPO)  # the example names files in assets/
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the project's own README
    assert len(namespace["doc"].pages) == 2 and "INVOICE" in namespace["text"]
    assert "Adaptive Lattice Smoothing" in capsys.readouterr().out


def test_readme_vlm_example_runs_on_a_twin_in_the_models_folder(tmp_path):
    from tests.twins import build_twin

    classic, vlm = blocks("python")[:2]
    assert 'load_pipeline("qwen2_5_vl_3b")' in vlm
    twin = build_twin("qwen2_5_vl_3b", tmp_path / "models")
    # A fresh process: the pipeline reads CHATVLMLLM_MODEL_DIRS when it is first made.
    script = classic + vlm + textwrap.dedent("""
        print()
        print("RESULT", type(answer).__name__, type(dates).__name__, len(dates.pages), dates.pages[0].mode)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "CHATVLMLLM_MODEL_DIRS": f"qwen2_5_vl_3b={twin}", "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-1] == "RESULT str DocumentResult 1 free_prompt"


def test_readme_curl_and_gradio_client_examples_run_against_the_app(tmp_path):
    from tests.app_server import running_app

    curl = next(line for block in blocks("bash") for line in block.splitlines() if line.startswith("curl "))
    client_code = blocks("python")[2]
    assert "http://127.0.0.1:7860" in curl and 'Client("http://127.0.0.1:7860/")' in client_code
    with running_app() as base_url:
        done = subprocess.run(curl.replace("http://127.0.0.1:7860", base_url).split() + ["-s"], cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        answer = json.loads(done.stdout)
        assert answer["model"] == "classic" and "INV-2024-0317" in answer["pages"][0]["markdown"]
        namespace: dict = {}
        cwd = os.getcwd()
        os.chdir(REPO)
        try:
            exec(compile(client_code.replace("http://127.0.0.1:7860/", f"{base_url}/"), "README.md", "exec"), namespace)  # noqa: S102
        finally:
            os.chdir(cwd)
    assert "Adaptive Lattice Smoothing" in namespace["markdown"]
    assert namespace["page_json"]["page"] == 0 and Path(namespace["zip_path"]).suffix == ".zip"
