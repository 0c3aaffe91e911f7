"""The container files, checked where no Docker engine runs: what they copy exists, the command
they run is the app's, and the compose wiring selects the app's server backend for dots.ocr."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from pipelines import load_pipeline

REPO = Path(__file__).resolve().parent.parent


def test_the_dockerfile_installs_what_readme_installs_and_runs_the_app():
    lines = (REPO / "Dockerfile").read_text().splitlines()
    copied = [part for line in lines if line.startswith("COPY ") for part in line.split()[1:-1]]
    assert all((REPO / name).exists() for name in copied if name != "."), copied
    text = "\n".join(lines)
    # The pip installs of README's first command, in its order (the CPU install: no torch).
    readme = (REPO / "README.md").read_text()
    run_command = next(line for line in readme.splitlines() if line.startswith("pip install ") and "app.py" in line)
    readme_installs = [part.split("pip install ")[1].strip() for part in run_command.split("&&") if "pip install" in part]
    docker_installs = re.findall(r"pip install --no-cache-dir (.*?)(?: \\|$)", text, re.M)
    assert readme_installs == docker_installs == ["-r requirements-cpu.txt", "--no-deps -r requirements-nodeps.txt"]
    assert 'CMD ["python", "app.py"]' in text and "GRADIO_SERVER_NAME=0.0.0.0" in text


def test_compose_points_the_app_at_the_vllm_service(monkeypatch):
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    app, vllm = compose["services"]["app"], compose["services"]["vllm"]
    assert app["build"] == "." and app["depends_on"] == ["vllm"]
    assert "rednote-hilab/dots.ocr" in vllm["command"] and "8000" in vllm["command"]
    for name, value in app["environment"].items():
        monkeypatch.setenv(name, value)
    engine = load_pipeline("dots_ocr").engine  # as the app in that container would load it
    assert engine.name == "openai"
    assert engine.config.base_urls == ("http://vllm:8000/v1",)
    assert engine.config.served_model == "rednote-hilab/dots.ocr"


def test_debian_packages_come_from_one_list_that_names_real_packages():
    import subprocess

    packages = [line.strip() for line in (REPO / "packages.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert {"tesseract-ocr", "tesseract-ocr-rus"} <= set(packages)
    assert "packages.txt" in (REPO / "Dockerfile").read_text() and "packages.txt" in (REPO / ".ci/run").read_text()
    # Each is a package Debian knows (apt-cache answers from the local package lists).
    known = subprocess.run(["apt-cache", "show", *packages], capture_output=True, text=True)
    assert known.returncode == 0 and known.stdout.count("\nPackage: ") + known.stdout.startswith("Package: ") >= len(packages)
