"""Fixtures for the API tests: tiny built suites (the runner tests' builder) in temporary folders."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("_runner_fixtures", Path(__file__).parents[1] / "runner" / "conftest.py")
_runner_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_runner_fixtures)
build_suite = _runner_fixtures.build_suite
"""``build_suite(suites, data, name, count, lr_size, metrics, scale=4, seed=0, with_hr=True)`` (tests/runner)."""


@pytest.fixture
def bench_env(tmp_path, monkeypatch):
    """Folders for suites, data and results, exported as OP4KSR_SUITES / OP4KSR_DATA / OP4KSR_RESULTS."""
    env = {"suites": tmp_path / "suites", "data": tmp_path / "data", "results": tmp_path / "results"}
    monkeypatch.setenv("OP4KSR_SUITES", str(env["suites"]))
    monkeypatch.setenv("OP4KSR_DATA", str(env["data"]))
    monkeypatch.setenv("OP4KSR_RESULTS", str(env["results"]))
    env["build"] = lambda name, count=3, lr_size=(16, 12), metrics=("psnr", "ssim"), **kw: build_suite(
        env["suites"], env["data"], name, count, lr_size, list(metrics), **kw
    )
    return env


@pytest.fixture
def cli():
    """Run ``python -m op4ksr_bench`` in a subprocess with the test's environment."""

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "op4ksr_bench", *args], capture_output=True, text=True, timeout=300, cwd=cwd,
            env={**os.environ, **(env or {})},
        )  # fmt: skip

    return run
