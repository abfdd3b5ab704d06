"""Fixtures for the leaderboard tests: run folders written in the results schema (op4ksr_bench.results)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from op4ksr_bench.results import RUN_SCHEMA, summarize_samples, write_json

METRIC_META = {
    "psnr": {"kind": "FR", "higher_is_better": True, "backend": "native", "licence": "Apache-2.0"},
    "lpips-alex": {"kind": "FR", "higher_is_better": False, "backend": "lpips==0.1.4", "licence": "BSD-2-Clause"},
    "niqe": {"kind": "NR", "higher_is_better": False, "backend": "native", "licence": "Apache-2.0"},
    "pas": {"kind": "NR", "higher_is_better": False, "backend": "native", "licence": "Apache-2.0"},
    "seam": {"kind": "NR", "higher_is_better": False, "backend": "native", "licence": "Apache-2.0", "ideal": 0.0},
    "maniqa": {
        "kind": "NR",
        "higher_is_better": True,
        "backend": "pyiqa==0.1.16",
        "licence": "non-commercial",
        "non_commercial": True,
    },
}


def write_run(
    results: Path,
    *,
    method: str,
    display_name: str | None = None,
    suite: str = "tiny-syn",
    version: int = 1,
    suite_hash: str = "a" * 64,
    values: dict[str, dict[str, float | None]],
    metrics: tuple[str, ...] = ("psnr", "lpips-alex", "pas"),
    seconds: float = 0.5,
    memory: int | None = 200 * 1024**2,
    options: dict[str, Any] | None = None,
    patch_free: bool = True,
    licence: str = "BSD-3-Clause",
    steps: int = 0,
    failed: dict[str, str] | None = None,
    skipped_metrics: dict[str, str] | None = None,
    run_id: str = "r0",
    outputs: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write one run folder; ``values`` maps image id -> metric values; ``failed`` maps image id -> reason.

    ``outputs`` maps image id -> the SR image (``uint8`` array) to save in the run folder.
    """
    folder = results / f"{suite}@v{version}" / method.replace(":", "_") / run_id
    folder.mkdir(parents=True)
    samples = []
    for image_id, metric_values in values.items():
        sample = {
            "id": image_id,
            "status": "ok",
            "reason": None,
            "metrics": metric_values,
            "seconds": seconds,
            "peak_memory_bytes": memory,
        }
        if outputs and image_id in outputs:
            from op4ksr_bench.atomic import sha256_file
            from op4ksr_bench.imageio import write_png

            path = folder / "outputs" / f"{image_id}.png"
            write_png(path, outputs[image_id])
            sample["output"] = path.relative_to(folder).as_posix()
            sample["output_sha256"] = sha256_file(path)
        samples.append(sample)
    for image_id, reason in (failed or {}).items():
        samples.append({"id": image_id, "status": "failed", "reason": reason, "metrics": {}, "seconds": None})
    (folder / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples), encoding="utf-8")
    run = {
        "schema": RUN_SCHEMA,
        "run_id": run_id,
        "suite": {"name": suite, "variant": "bicubic-x4", "version": version, "hash": suite_hash, "scale": 4},
        "method": {
            "spec": method,
            "card": {
                "name": method,
                "display_name": display_name or method,
                "paper": "",
                "licence": licence,
                "family": "interpolation",
                "steps": steps,
                "patch_free": patch_free,
                "default_tile": None,
                "default_overlap": None,
            },
            "options": {"scale": 4, "device": "cpu", "dtype": "float32", **(options or {})},
        },
        "metrics": {name: {**METRIC_META[name], "settings": {"crop_border": 4}} for name in metrics},
        "environment": {"package_version": "0.1.0", "git_sha": "abc123", "torch": "2.14.1", "device_name": "cpu"},
        "seed": 0,
        "started_at": "2026-01-01T00:00:00Z",
        "wall_seconds": 12.5,
        "counts": {"total": len(samples), "ok": len(values), "failed": len(failed or {})},
        "summary": summarize_samples(samples),
    }
    if skipped_metrics:
        run["skipped_metrics"] = skipped_metrics
    write_json(folder / "run.json", run)
    return folder


@pytest.fixture
def make_run():
    """The :func:`write_run` factory, for tests that need their own run folders."""
    return write_run


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A results folder with three methods on one suite, one of them tiled, one with a skipped metric."""
    root = tmp_path / "results"
    write_run(
        root,
        method="bicubic",
        display_name="Bicubic",
        values={
            "img-a": {"psnr": 24.0, "lpips-alex": 0.40, "pas": 0.10, "pas.p16": 0.10, "pas.p32": 0.05},
            "img-b": {"psnr": 26.0, "lpips-alex": 0.30, "pas": 0.20, "pas.p16": 0.20, "pas.p32": 0.07},
        },
        seconds=0.01,
    )
    write_run(
        root,
        method="lanczos",
        display_name="Lanczos",
        values={
            "img-a": {"psnr": 25.0, "lpips-alex": 0.35, "pas": 0.12, "pas.p16": 0.12, "pas.p32": 0.06},
            "img-b": {"psnr": 27.0, "lpips-alex": 0.25, "pas": 0.22, "pas.p16": 0.22, "pas.p32": 0.08},
        },
        seconds=0.02,
    )
    write_run(
        root,
        method="realesrgan-x4plus",
        display_name="Real-ESRGAN x4plus",
        values={"img-a": {"psnr": 23.0, "pas": 0.30, "pas.p16": 0.30, "pas.p32": 0.30}},
        metrics=("psnr", "pas"),
        skipped_metrics={"lpips-alex": "weights missing: alexnet.pth goes in TORCH_HOME/hub/checkpoints"},
        failed={"img-b": "CUDA out of memory"},
        options={"tile": 512, "overlap": 32},
        patch_free=False,
        steps=1,
        seconds=1.5,
        memory=3 * 1024**3,
    )
    return root


def write_suite(data: Path, name: str, images: dict[str, np.ndarray], scale: int = 4, with_hr: bool = True) -> str:
    """Write a built suite in the data layout (suite.yaml, suite.json, manifest.jsonl, lr/, hr/); return its hash.

    ``images`` maps id -> HR ``uint8`` array; the LR is its ``scale``-times box-average (exact for the test).
    """
    import yaml

    from op4ksr_bench.atomic import sha256_file
    from op4ksr_bench.data.manifest import manifest_bytes, suite_hash
    from op4ksr_bench.imageio import write_png

    root = data / name
    entries = []
    for image_id, hr in images.items():
        height, width = hr.shape[:2]
        lr = hr.reshape(height // scale, scale, width // scale, scale, 3).mean(axis=(1, 3)).round().astype(np.uint8)
        write_png(root / "lr" / f"{image_id}.png", lr)
        lr_sha256 = sha256_file(root / "lr" / f"{image_id}.png")
        entry = {
            "id": image_id, "lr": f"lr/{image_id}.png", "hr": None, "lr_sha256": lr_sha256,
            "hr_sha256": None, "lr_width": width // scale, "lr_height": height // scale, "hr_width": None,
            "hr_height": None, "source": "test", "original_path": f"{image_id}.png", "license": "CC0-1.0",
            "attribution": "generated by the test", "crop": None, "degradation": None,
        }  # fmt: skip
        if with_hr:
            write_png(root / "hr" / f"{image_id}.png", hr)
            entry.update(hr=f"hr/{image_id}.png", hr_sha256=sha256_file(root / "hr" / f"{image_id}.png"))
            entry.update(hr_width=width, hr_height=height)
        entries.append(entry)
    spec = {"name": name, "version": 1, "task": "synthetic" if with_hr else "real", "scale": scale, "seed": 0}
    spec["metrics"] = ["psnr"]
    yaml_text = yaml.safe_dump(spec, sort_keys=True)
    manifest = manifest_bytes(entries)
    (root / "suite.yaml").write_text(yaml_text, encoding="utf-8")
    (root / "manifest.jsonl").write_bytes(manifest)
    digest = suite_hash(yaml_text.encode("utf-8"), manifest)
    info = {"name": name, "version": 1, "variant": "test", "task": spec["task"], "scale": scale, "hash": digest}
    (root / "suite.json").write_text(json.dumps({**info, "count": len(entries)}), encoding="utf-8")
    return digest


def textured_image(seed: int, size: int = 128, patch: tuple[int, int] = (64, 32)) -> np.ndarray:
    """A smooth gradient with one 32x32 patch of random texture at ``patch`` (x, y); deterministic per seed."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(40, 200, size)
    image = np.stack([np.add.outer(ramp, ramp) / 2] * 3, axis=-1)
    x, y = patch
    image[y : y + 32, x : x + 32] = rng.integers(0, 256, (32, 32, 3))
    return image.round().astype(np.uint8)


@pytest.fixture
def make_suite():
    """The :func:`write_suite` factory."""
    return write_suite


@pytest.fixture
def textured():
    """The :func:`textured_image` factory."""
    return textured_image


@pytest.fixture
def compared(tmp_path, make_run, make_suite):
    """A built suite (two 128x128 images with ground truth) and three runs that saved outputs, one failing once.

    Returns:
        ``(results, data, hr_images, outputs)``.
    """
    data, results = tmp_path / "data", tmp_path / "results"
    hr = {"img-a": textured_image(1, patch=(64, 32)), "img-b": textured_image(2, patch=(0, 96))}
    digest = make_suite(data, "tiny-syn", hr)
    outputs = {
        "bicubic": {key: np.clip(image.astype(int) + 3, 0, 255).astype(np.uint8) for key, image in hr.items()},
        "lanczos": {key: np.clip(image.astype(int) - 3, 0, 255).astype(np.uint8) for key, image in hr.items()},
        "op4ksr": {"img-a": hr["img-a"][::-1].copy()},
    }
    for number, (method, images) in enumerate(outputs.items()):
        values = {key: {"psnr": 30.0 + number + index} for index, key in enumerate(images)}
        failed = {"img-b": "out of memory"} if method == "op4ksr" else None
        make_run(
            results, method=method, values=values, metrics=("psnr",), suite_hash=digest, outputs=images, failed=failed
        )
    return results, data, hr, outputs
