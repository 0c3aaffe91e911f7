"""The CPU-only install (requirements-cpu.txt: no torch, torchvision, transformers or accelerate)
runs the app, the REST API and the CLI with `classic`, and every door says how to add local VLMs
when one is asked for. Run in a child Python in which those packages cannot be imported."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VLM = ["torch", "torchvision", "transformers", "accelerate"]

# Installed before anything else runs: importing (or finding) a VLM package fails as it does where
# the package is absent.
HIDE_VLM_PACKAGES = textwrap.dedent(f"""
    import sys

    class HideVlmPackages:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {VLM!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, HideVlmPackages())
""")


def run_without_vlm(code: str, *args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HIDE_VLM_PACKAGES + textwrap.dedent(code), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(home)})


def test_the_app_serves_classic_and_names_the_vlm_install_without_torch(tmp_path):
    done = run_without_vlm("""
        import json, sys
        from fastapi.testclient import TestClient
        import app
        from ui.chat_tab import chat_default
        from ui.common import model_choice
        from ui.models_tab import catalogue_rows
        from ui.parse_tab import on_model_change
        from pipelines import get_spec

        client = TestClient(app.create_app())
        models = {m["key"]: m for m in client.get("/models").json()["models"]}
        invoice = open("assets/invoice.png", "rb").read()
        parsed = client.post("/analyze_layout", files={"file": ("invoice.png", invoice)})
        refused = client.post("/analyze_layout", files={"file": ("invoice.png", invoice)}, data={"model": "dots_ocr"})
        print(json.dumps({
            "missing": {key: m["missing_packages"] for key, m in models.items()},
            "parsed": [parsed.status_code, " ".join(e["text"] for e in parsed.json()["pages"][0]["elements"])],
            "refused": [refused.status_code, refused.json()],
            "label": model_choice(get_spec("dots_ocr"))[0],
            "chat_note": chat_default()[1],
            "parse_note": on_model_change("dots_ocr")[1],
            "models_tab": {row[0]: row[4] for row in catalogue_rows()},
            "imported": sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers")),
        }))
        # A model the operator serves from vLLM/SGLang needs none of the VLM packages.
        import os
        os.environ["CHATVLMLLM_OPENAI_DOTS_OCR_BASE_URLS"] = "http://127.0.0.1:9/v1"
        served = {m["key"]: m for m in client.get("/models").json()["models"]}["dots_ocr"]
        os.environ["CHATVLMLLM_OPENAI_QWEN3_VL_2B_BASE_URLS"] = "http://127.0.0.1:9/v1"
        print(json.dumps({"served": [served["missing_packages"], model_choice(get_spec("dots_ocr"))[0],
                                     type(__import__("pipelines").load_pipeline("dots_ocr").engine).__name__,
                                     list(chat_default())]}))
    """, home=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    *_, last, served = done.stdout.strip().splitlines()
    seen = json.loads(last)
    assert json.loads(served)["served"] == [[], "dots.ocr (layout + text, 1.7B) · on a server", "OpenAIEngine",
                                            ["qwen3_vl_2b", ""]]  # Chat opens on the served chat model
    assert seen["missing"].pop("classic") == []
    assert seen["missing"] and all(missing == VLM for missing in seen["missing"].values())
    status, text = seen["parsed"]
    assert status == 200 and "INVOICE" in text.upper()
    status, body = seen["refused"]
    assert status == 503 and body["error"]["code"] == "vlm_not_installed", body
    assert "missing here: torch, torchvision, transformers, accelerate (the CPU-only" in body["error"]["message"]
    assert "`pip install -r requirements-vlm.txt`" in body["error"]["message"]
    assert seen["label"].endswith("· needs the VLM install (or a server)")
    assert "`pip install -r requirements-vlm.txt` adds it" in seen["chat_note"]
    assert seen["parse_note"].endswith("This install cannot run it locally (missing: torch, torchvision, transformers, "
                                      "accelerate): `pip install -r requirements-vlm.txt` adds that, or name a "
                                      "vLLM/SGLang server under Server.")
    assert seen["models_tab"]["classic"] == "yes"
    assert seen["models_tab"]["qwen2_vl_2b"] == "after pip install -r requirements-vlm.txt " \
                                                 "(missing: torch, torchvision, transformers, accelerate)"
    assert seen["imported"] == []


def test_the_cli_parses_with_classic_and_refuses_a_local_vlm_with_the_install_command(tmp_path):
    cli = "import runpy, sys; sys.argv = ['chatvlmllm', *sys.argv[1:]]; runpy.run_module('pipelines', run_name='__main__')"
    parsed = run_without_vlm(cli, "parse", "assets/invoice.png", "--out", str(tmp_path / "classic"), home=tmp_path)
    assert parsed.returncode == 0, parsed.stderr[-3000:]
    assert "INVOICE" in (tmp_path / "classic" / "invoice" / "document.md").read_text().upper()
    refused = run_without_vlm(cli, "parse", "assets/invoice.png", "--model", "dots_ocr", "--out", str(tmp_path / "vlm"), home=tmp_path)
    assert refused.returncode != 0
    assert "pip install -r requirements-vlm.txt" in refused.stderr + refused.stdout
