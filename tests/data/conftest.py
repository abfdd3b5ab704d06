"""Fixtures for the data tests: generated photographs and tiny suite definitions (no network, no real packages)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image


def natural_image(height: int, width: int, seed: int, flat_top: float = 0.0) -> np.ndarray:
    """``uint8`` ``H x W x 3`` with a 1/f spectrum (photo-like detail up to Nyquist); ``flat_top`` rows are flat."""
    rng = np.random.default_rng(seed)
    frequency_y = np.fft.fftfreq(height)[:, None]
    frequency_x = np.fft.rfftfreq(width)[None, :]
    radius = np.sqrt(frequency_y**2 + frequency_x**2)
    radius[0, 0] = 1.0
    channels = []
    for _ in range(3):
        spectrum = (rng.standard_normal(radius.shape) + 1j * rng.standard_normal(radius.shape)) / radius
        spectrum[0, 0] = 0
        channel = np.fft.irfft2(spectrum, s=(height, width))
        channel = (channel - channel.mean()) / (channel.std() + 1e-9)
        channels.append(channel)
    image = np.stack(channels, axis=-1) * 45.0 + 128.0
    if flat_top:
        image[: int(height * flat_top)] = 120.0
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


@pytest.fixture
def make_image():
    return natural_image


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """Eight generated photographs (PNG and JPEG) of different sizes, plus a LICENSE file."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    sizes = [(288, 512), (320, 480), (256, 256), (272, 400), (240, 352), (224, 336), (304, 448), (256, 384)]
    for index, (height, width) in enumerate(sizes):
        image = Image.fromarray(natural_image(height, width, seed=100 + index))
        target = folder / ("sub" if index % 2 else "") / f"photo{index}.{'png' if index % 3 else 'jpg'}"
        image.save(target, quality=97) if target.suffix == ".jpg" else image.save(target)
    (folder / "LICENSE").write_text("CC0-1.0 test photographs\n")
    return folder


TINY_CURATION = {
    "min_long_side": 160, "min_short_side": 128, "max_aspect": 2.5, "min_hf_ratio": 0.005,
    "min_sharpness": 1.0, "max_flat_fraction": 0.6, "phash_distance": 8,
}  # fmt: skip


def tiny_suites(folder: Path, source_specs: list[str]) -> dict[str, dict]:
    """Four suites shaped like the default ones, at test sizes, sharing one pool."""
    common = {"version": 1, "crop_border": 4, "metrics": ["psnr"]}
    pool = {"specs": source_specs, "pool": "default", "pool_seed": 7}
    suites = {
        "4ksr-syn": {
            **common, "name": "4ksr-syn", "task": "synthetic", "scale": 4, "variant": "auto", "count": 2, "seed": 1,
            "variants": {"official": {"hr_size": [320, 320]}, "uhd": {"hr_size": [320, 192]}},
            "source": {**pool, "priority": 1}, "crop": {"mode": "fixed"},
            "curation": {**TINY_CURATION, "min_long_side": 320, "min_short_side": 192},
            "degradation": {"spatial_scale": 1.0},
        },
        "4ksr-realsquare": {
            **common, "name": "4ksr-realsquare", "task": "real", "scale": 4, "variant": "native", "count": 2,
            "seed": 2, "lr_size": [128, 128], "source": {**pool, "priority": 2}, "crop": {"mode": "fixed"},
            "curation": TINY_CURATION,
        },
        "4ksr-realvary": {
            **common, "name": "4ksr-realvary", "task": "real", "scale": 4, "variant": "native", "count": 2,
            "seed": 3, "source": {**pool, "priority": 3},
            "crop": {"mode": "vary", "aspect_range": [0.5, 2.0], "long_side_range": [96, 160]},
            "curation": TINY_CURATION,
        },
        "train": {
            **common, "name": "train", "task": "train", "scale": 4, "variant": "native", "count": None, "seed": 4,
            "hr_size": [128, 128], "source": {**pool, "priority": 4},
            "crop": {"mode": "tiles", "size": 128, "max_per_image": 3, "max_overlap": 0.25},
            "curation": TINY_CURATION, "degradation": {"spatial_scale": 1.0},
        },
    }  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in suites.items():
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return suites


@pytest.fixture
def tiny_suite_dir(tmp_path: Path, photo_folder: Path, monkeypatch) -> Path:
    """``$OP4KSR_SUITES`` pointing at :func:`tiny_suites` over ``photo_folder``."""
    folder = tmp_path / "suites"
    tiny_suites(folder, [f"folder:{photo_folder}"])
    monkeypatch.setenv("OP4KSR_SUITES", str(folder))
    return folder
