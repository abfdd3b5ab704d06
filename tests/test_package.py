"""The installable package: cheap imports for --help and ls, python -m, package data, and a wheel installed into
a fresh virtual environment working from another directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from op4ksr_bench.data import suites as suites_module

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "pyiqa", "torchvision", "diffusers", "spandrel", "pandas")
CHEAP_COMMANDS = [["--help"], ["--version"], ["ls", "suites"], ["ls", "metrics"], ["ls", "methods"], ["run", "--help"]]


@pytest.mark.parametrize("command", CHEAP_COMMANDS, ids=" ".join)
def test_help_and_ls_import_neither_torch_nor_pyiqa(command):
    code = (
        "import json, sys\n"
        f"sys.argv = ['op4ksr-bench', *{command!r}]\n"
        "from op4ksr_bench.cli import main\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        f"print(json.dumps([name for name in {HEAVY!r} if name in sys.modules]))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []


def test_python_m_is_the_console_script():
    completed = subprocess.run(
        [sys.executable, "-m", "op4ksr_bench", "--version"], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0 and completed.stdout.startswith("op4ksr-bench ")
    completed = subprocess.run([sys.executable, "-m", "op4ksr_bench", "no-such-command"], capture_output=True)
    assert completed.returncode == 2


def test_suites_come_from_the_package_data_then_the_checkout(monkeypatch, tmp_path):
    monkeypatch.delenv("OP4KSR_SUITES", raising=False)
    assert suites_module.suites_dir() == REPO / "datasets"  # a checkout: no op4ksr_bench/suites/ in the source
    assert "4ksr-syn" in suites_module.suite_names()
    monkeypatch.setenv("OP4KSR_SUITES", str(tmp_path))
    assert suites_module.suites_dir() == tmp_path


@pytest.mark.slow
def test_wheel_installed_elsewhere_lists_and_runs(tmp_path):
    """Build the wheel offline, install it with --no-deps into a fresh venv that reuses this environment's
    packages, and use it from a directory outside the checkout."""
    source = tmp_path / "source"
    for name in ("op4ksr_bench", "reference_model", "datasets"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(REPO / name, source / name)
    dist = tmp_path / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dist), str(source)]
    subprocess.run(build, check=True, capture_output=True, timeout=600)
    (wheel,) = dist.glob("op4ksr_bench-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    expected = [f"op4ksr_bench/suites/{path.name}" for path in (REPO / "datasets").glob("*.yaml")]
    expected += ["op4ksr_bench/report/templates/index.html", "op4ksr_bench/methods/external/supir.yaml",
                 "reference_model/checkpoints/nano/transformer/diffusion_pytorch_model.safetensors",
                 "reference_model/checkpoints/cpu-skip-pf/skip.safetensors",
                 "reference_model/checkpoints/cpu-skip-pf/vae/diffusion_pytorch_model.safetensors"]  # fmt: skip
    assert not [name for name in expected if name not in names]

    # the venv sits inside an unrelated git checkout (as a project's .venv does): run.json must not claim its commit
    checkout = tmp_path / "other-project"
    checkout.mkdir()
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=checkout, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "unrelated"], cwd=checkout, check=True)
    venv = checkout / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    # the dependencies come from this environment (a venv itself, so --system-site-packages alone misses them)
    Path(purelib, "_op4ksr_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = [str(python), "-m", "pip", "--disable-pip-version-check", "install", "--no-deps", "--no-index"]
    subprocess.run([*install, str(wheel)], check=True, capture_output=True, timeout=600)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    data = tmp_path / "data"
    # a tiny built suite with its own definition folder, used by the run only (ls reads the packaged suites)
    _runner_fixtures().build_suite(tmp_path / "definitions", data, "tiny", 1, (16, 12), ["psnr"])
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OP4KSR_SUITES", "PYTHONPATH"))}
    env.update(OP4KSR_DATA=str(data), OP4KSR_RESULTS=str(elsewhere / "results"))
    script = venv / "bin" / "op4ksr-bench"

    def run(*args: str, extra: dict[str, str] | None = None) -> str:
        completed = subprocess.run([str(script), *args], cwd=elsewhere, env={**env, **(extra or {})},
                                   capture_output=True, text=True, timeout=600)  # fmt: skip
        assert completed.returncode == 0, f"{args}: {completed.stderr[-2000:]}"
        return completed.stdout

    where = subprocess.run(
        [str(python), "-c", "import op4ksr_bench.data.suites as s; print(s.__file__); print(s.suites_dir())"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert where[0].startswith(purelib) and where[1] == str(Path(purelib, "op4ksr_bench", "suites"))
    listed = run("ls", "suites")
    assert all(path.stem in listed for path in (REPO / "datasets").glob("*.yaml"))
    methods = run("ls", "methods")
    assert "bicubic" in methods and "supir" in methods
    checkpoint = subprocess.run(
        [str(python), "-c", "from op4ksr_bench.methods.op4ksr import shipped_checkpoint; print(shipped_checkpoint())"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert checkpoint.startswith(purelib) and Path(checkpoint, "transformer", "config.json").is_file()
    definitions = {"OP4KSR_SUITES": str(tmp_path / "definitions")}
    run("run", "--method", "bicubic", "--suite", "tiny", "--metrics", "psnr", "--limit", "1", extra=definitions)
    (run_json,) = (elsewhere / "results").rglob("run.json")
    record = json.loads(run_json.read_text())
    assert record["status"] == "complete" and record["counts"]["ok"] == 1
    assert record["method"]["card"]["name"] == "bicubic"
    assert record["environment"]["git_sha"] is None  # not the commit of a checkout the venv happens to sit in
    module_help = subprocess.run([str(python), "-m", "op4ksr_bench", "--help"], cwd=elsewhere, env=env,
                                 capture_output=True, text=True)  # fmt: skip
    assert module_help.returncode == 0 and "build-dataset" in module_help.stdout


def _runner_fixtures():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_runner_fixtures", REPO / "tests" / "runner" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
