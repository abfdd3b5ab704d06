"""Shared fixtures. Tests are CPU-only and offline; every test uses temporary folders for data and weights."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """Point every cache and weights location at a temporary folder so tests never touch a user's files."""
    from op4ksr_bench.paths import downloads_dir

    downloads = downloads_dir()  # the user's download cache stays shared: Debian packages are large
    root = tmp_path_factory.mktemp("env")
    monkeypatch.setenv("OP4KSR_DOWNLOADS", str(downloads))
    monkeypatch.setenv("XDG_CACHE_HOME", str(root / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(root / "torch"))
    monkeypatch.setenv("HF_HOME", str(root / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OP4KSR_WEIGHTS", str(root / "weights"))
    monkeypatch.setenv("OP4KSR_DATA", str(root / "data"))
    yield
