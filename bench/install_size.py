"""What README's first command puts on a machine: the CPU install (requirements-cpu.txt, no torch)
against everything (requirements.txt: what a Space and a GPU machine install, and what that
command installed before the VLM stack became an extra), each into a fresh virtualenv, side by
side in one run.

Per install: wall time of both pip commands (no pip cache, so every wheel is fetched; the time
depends on the package index's speed as much as on the machine), the virtualenv's size on disk,
the number of packages, the largest ones, and a check that it works: `classic` parses the
example invoice through the CLI, and whether torch imports.

    python bench/install_size.py      # writes bench/results/install_size.{json,md}
"""
from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
INSTALLS = {"cpu": "requirements-cpu.txt", "full": "requirements.txt"}


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def measure(name: str, requirements: str, root: Path) -> dict:
    env_dir = root / name
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    commands = [[python, "-m", "pip", "install", "-q", "--no-cache-dir", "-r", requirements],
                [python, "-m", "pip", "install", "-q", "--no-cache-dir", "--no-deps", "-r", "requirements-nodeps.txt"]]
    started = time.perf_counter()
    for command in commands:
        subprocess.run(command, cwd=REPO, check=True)
    install_s = time.perf_counter() - started
    site = next(env_dir.glob("lib/python*/site-packages"))
    largest = sorted(((folder_mb(p), p.name) for p in site.iterdir() if p.is_dir()), reverse=True)[:6]
    listed = subprocess.run([python, "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True)
    out = root / f"{name}-out"
    parsed = subprocess.run([python, "-m", "pipelines", "parse", "assets/invoice.png", "--out", str(out)],
                            cwd=REPO, capture_output=True, text=True)
    markdown = out / "invoice" / "document.md"
    torch = subprocess.run([python, "-c", "import torch"], capture_output=True)
    return {
        "requirements": requirements,
        "install_s": round(install_s, 1),
        "venv_mb": round(folder_mb(env_dir)),
        "packages": len(json.loads(listed.stdout)),
        "largest_mb": {name: round(size) for size, name in largest},
        "classic_parses_invoice": parsed.returncode == 0 and markdown.is_file()
                                  and "INVOICE" in markdown.read_text().upper(),
        "torch_imports": torch.returncode == 0,
    }


def main() -> dict:
    with tempfile.TemporaryDirectory() as root:
        installs = {name: measure(name, requirements, Path(root)) for name, requirements in INSTALLS.items()}
    report = {
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "installs": installs,
        "cpu_vs_full": {"size_ratio": round(installs["cpu"]["venv_mb"] / installs["full"]["venv_mb"], 3),
                        "time_ratio": round(installs["cpu"]["install_s"] / installs["full"]["install_s"], 3)},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "install_size.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["# Install size: README's first command, CPU install vs everything", "",
             f"Fresh virtualenvs, `pip install --no-cache-dir`, one run side by side ({report['machine']}).", "",
             "| install | requirements | pip time (s) | venv (MB) | packages | classic parses the invoice | torch |",
             "|---|---|---|---|---|---|---|"]
    for name, row in installs.items():
        lines.append(f"| {name} | `{row['requirements']}` | {row['install_s']} | {row['venv_mb']} | {row['packages']} | "
                     f"{'yes' if row['classic_parses_invoice'] else 'NO'} | {'imports' if row['torch_imports'] else 'absent'} |")
    lines += ["", "Largest packages (MB):", ""]
    lines += [f"- {name}: " + ", ".join(f"{pkg} {mb}" for pkg, mb in row["largest_mb"].items()) for name, row in installs.items()]
    (RESULTS / "install_size.md").write_text("\n".join(lines) + "\n")
    return report


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
    sys.exit(0)
