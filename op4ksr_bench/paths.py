"""Default locations: data, weights and caches, each overridable by an environment variable."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/op4ksr-bench`` (default ``~/.cache/op4ksr-bench``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "op4ksr-bench"


def data_dir() -> Path:
    """Where built suites live: ``$OP4KSR_DATA``, else ``<cache>/data``."""
    return Path(os.environ["OP4KSR_DATA"]) if os.environ.get("OP4KSR_DATA") else cache_root() / "data"


def downloads_dir() -> Path:
    """Where downloaded source archives (Debian packages, sdists, wheels) are kept: ``$OP4KSR_DOWNLOADS``."""
    if os.environ.get("OP4KSR_DOWNLOADS"):
        return Path(os.environ["OP4KSR_DOWNLOADS"])
    return cache_root() / "downloads"


def weights_dir() -> Path:
    """Where the project's own weight files live: ``$OP4KSR_WEIGHTS``, else ``<cache>/weights``."""
    return Path(os.environ["OP4KSR_WEIGHTS"]) if os.environ.get("OP4KSR_WEIGHTS") else cache_root() / "weights"


def torch_home() -> Path:
    """``$TORCH_HOME`` as torch resolves it (default ``~/.cache/torch``); pyiqa and torchvision read below it."""
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "torch"


def results_dir() -> Path:
    """Default results folder: ``$OP4KSR_RESULTS``, else ``./results``."""
    return Path(os.environ["OP4KSR_RESULTS"]) if os.environ.get("OP4KSR_RESULTS") else Path("results")
