"""Deploying as a Hugging Face Space: README's front matter names what exists, and with the
`spaces` package installed (not on ZeroGPU hardware) the app starts and the decorated generation
still runs, on the CPU."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def front_matter() -> dict:
    text = (REPO / "README.md").read_text()
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert match, "README.md does not start with Space front matter"
    return yaml.safe_load(match.group(1))


def test_front_matter_describes_a_gradio_space_of_this_repository():
    import gradio

    meta = front_matter()
    assert meta["sdk"] == "gradio" and (REPO / meta["app_file"]).is_file()
    assert meta["sdk_version"] == gradio.__version__  # the version the tests ran with
    assert str(meta["python_version"]) == "3.11" and meta["license"] == "apache-2.0"
    assert meta["title"] and meta["emoji"] and 0 < len(meta["short_description"]) <= 60
    assert (REPO / "packages.txt").is_file() and (REPO / "requirements.txt").is_file()


def test_generation_is_the_gpu_call_and_still_runs_on_the_cpu():
    import spaces  # installed by requirements-dev.txt

    from pipelines.engines import zerogpu
    from pipelines.engines.transformers_engine import TransformersEngine

    assert zerogpu.spaces is spaces
    assert zerogpu.generation_seconds(512) == 45 and zerogpu.generation_seconds(100_000) == 300
    calls = []

    def generate(self, loaded, inputs, max_new_tokens, keep_special_tokens, **hooks):
        calls.append(max_new_tokens)
        return "done"

    # Off ZeroGPU hardware spaces.GPU hands the function back: it runs here, on the CPU.
    assert zerogpu.on_gpu(generate)(None, None, None, 8, True) == "done" and calls == [8]
    assert TransformersEngine._generate.__name__ == "_generate"


def test_the_app_builds_with_spaces_installed():
    import spaces  # noqa: F401

    import app

    demo = app.build_demo()
    assert {"parse", "chat", "compare", "region_text"} <= {d.api_name for d in demo.fns.values() if d.api_name}


def test_a_space_installs_the_same_layout_package_as_readme():
    def pins(name: str) -> set[str]:
        return {line.split("#")[0].strip() for line in (REPO / name).read_text().splitlines()
                if line.split("#")[0].strip()}

    assert pins("pre-requirements.txt") == {"rapid-layout==1.2.1"} <= pins("requirements-nodeps.txt")
    # requirements.txt, installed after it, names the headless OpenCV whose files then win.
    assert any(line.startswith("opencv-python-headless") for line in pins("requirements.txt"))


def test_a_space_installs_everything_a_cpu_install_has_plus_the_vlm_extra():
    def requirements(name: str) -> list[str]:
        return [line.split("#")[0].strip() for line in (REPO / name).read_text().splitlines()
                if line.split("#")[0].strip()]

    space, cpu, vlm = requirements("requirements.txt"), requirements("requirements-cpu.txt"), requirements("requirements-vlm.txt")
    assert not any(line.startswith("-r") for line in space)  # a Space reads this one file only
    assert space == cpu + vlm
    assert {"torch>=2.6,<3", "transformers>=5.24,<6"} <= set(vlm) and not any(r.startswith("torch") for r in cpu)
