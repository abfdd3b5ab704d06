"""Hostile-input corpus: tiny built suites and run folders that the tests then damage the way an attacker would."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import yaml

from op4ksr_bench.atomic import sha256_file
from op4ksr_bench.data.manifest import manifest_bytes, manifest_line, suite_hash
from op4ksr_bench.imageio import write_png


def write_suite(data: Path, suites: Path, name: str = "tiny", count: int = 3, entries_hook=None) -> Path:
    """A built suite ``<data>/<name>`` (4x, 16x12 LR, HR ground truth) in the documented on-disk format.

    ``entries_hook(entries)`` may alter the manifest entries before the manifest (and the hash) is written.
    """
    spec = {
        "name": name, "version": 1, "task": "synthetic", "scale": 4, "variant": "native", "seed": 0,
        "crop_border": 4, "metrics": ["psnr"], "count": count, "description": "hostile-input test suite",
    }  # fmt: skip
    suites.mkdir(parents=True, exist_ok=True)
    (suites / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=True))
    root = data / name
    (root / "lr").mkdir(parents=True, exist_ok=True)
    (root / "hr").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    entries = []
    for index in range(count):
        image_id = f"img{index:03d}"
        hr = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        lr = hr.reshape(12, 4, 16, 4, 3).mean(axis=(1, 3)).round().astype(np.uint8)
        write_png(root / "lr" / f"{image_id}.png", lr)
        write_png(root / "hr" / f"{image_id}.png", hr)
        entries.append({
            "id": image_id, "lr": f"lr/{image_id}.png", "hr": f"hr/{image_id}.png",
            "lr_sha256": sha256_file(root / "lr" / f"{image_id}.png"),
            "hr_sha256": sha256_file(root / "hr" / f"{image_id}.png"),
            "lr_width": 16, "lr_height": 12, "hr_width": 64, "hr_height": 48, "source": "generated",
            "original_path": None, "license": "CC0-1.0", "attribution": "test", "crop": None, "degradation": None,
        })  # fmt: skip
    if entries_hook is not None:
        entries_hook(entries)
    yaml_text = yaml.safe_dump(spec, sort_keys=True, default_flow_style=False, allow_unicode=True)
    (root / "suite.yaml").write_text(yaml_text)
    manifest = "".join(manifest_line(entry) + "\n" for entry in entries).encode() if entries_hook else None
    manifest = manifest or manifest_bytes(entries)
    (root / "manifest.jsonl").write_bytes(manifest)
    info = {
        "name": name, "version": 1, "variant": "native", "task": "synthetic", "scale": 4, "hr_size": [64, 48],
        "lr_size": [16, 12], "count": len(entries), "hash": suite_hash(yaml_text.encode(), manifest),
        "built_with": "test",
    }  # fmt: skip
    (root / "suite.json").write_text(json.dumps(info, indent=2))
    return root


@pytest.fixture
def bench(tmp_path, monkeypatch):
    """Folders for suites, data and results (exported), a victim file outside them, and helpers."""
    env = {"suites": tmp_path / "suites", "data": tmp_path / "data", "results": tmp_path / "results"}
    monkeypatch.setenv("OP4KSR_SUITES", str(env["suites"]))
    monkeypatch.setenv("OP4KSR_DATA", str(env["data"]))
    monkeypatch.setenv("OP4KSR_RESULTS", str(env["results"]))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    env["victim"] = victim
    env["tmp"] = tmp_path
    env["suite"] = lambda name="tiny", count=3, hook=None: write_suite(env["data"], env["suites"], name, count, hook)
    return env


def run_bicubic(**overrides) -> None:
    """``op4ksr-bench run --method bicubic --suite tiny --metrics psnr`` in-process (raises typer.Exit on failures)."""
    from op4ksr_bench.run_commands import cli_run

    arguments = {"method": "bicubic", "suite": "tiny", "data": None, "results": None, "metrics": "psnr", "opts": [],
                 "device": "cpu", "dtype": "float32", "seed": 0, "limit": None, "shard": None}  # fmt: skip
    arguments.update(overrides)
    cli_run(**arguments)


def run_folder(results: Path, suite: str = "tiny", slug: str = "bicubic") -> Path:
    (folder,) = [path for path in (results / f"{suite}@v1" / slug).glob("run-*") if path.is_dir()]
    return folder


class Payload:
    """A pickle payload: unpickling it creates ``marker`` (proof that loading ran code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def pickled_payload(path: Path, marker: Path, torch_format: bool = True) -> Path:
    """Write a checkpoint whose loading through pickle would create ``marker``."""
    if torch_format:
        import torch

        torch.save({"state_dict": Payload(marker)}, path)
    else:
        path.write_bytes(pickle.dumps(Payload(marker)))
    return path


def files_under(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in Path(folder).rglob("*")}


@pytest.fixture
def tools():
    """The helpers above, for the test modules (conftest modules are not importable under importlib mode)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        run_bicubic=run_bicubic, run_folder=run_folder, pickled_payload=pickled_payload, files_under=files_under,
        write_suite=write_suite,
    )  # fmt: skip
