"""Training pairs: random HR crops from a built suite, degraded on the fly by the benchmark's own pipeline.

The HR images come from a built suite (``train`` by default: ``<data>/train`` with ``manifest.jsonl`` and
``hr/<id>.png``); the LR images are made by :func:`op4ksr_bench.data.degradations.degrade`, the same code that
builds the synthetic benchmark suites, with the suite's ``degradation`` config (or one given explicitly).

Determinism: process ``r``'s batch ``n`` is a pure function of ``(seed, n, r)`` (image choice, crop position,
flips and the degradation seed all come from ``numpy.random.default_rng([seed, n, r])``), so every process of a
multi-process run trains on its own slice, and a resumed run (with the same or another number of processes) sees
exactly the batches a fresh run with that many processes would see from that step on. A few images (chosen by a
seeded hash of their ids) are held out for validation and never trained on.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from op4ksr_bench.data.degradations import DegradationConfig, degrade, seed_for
from op4ksr_bench.data.manifest import BuiltSuite
from op4ksr_bench.errors import UsageError
from op4ksr_bench.imageio import read_image

logger = logging.getLogger(__name__)


class TrainingPairs:
    """HR/LR crop pairs from a built suite.

    Args:
        data_dir: The data folder holding ``<suite>/``.
        suite: Suite name (any suite with HR images; ``train`` by default).
        crop_size: HR crop side in pixels (a multiple of the model's pixels per token and of ``scale``).
        scale: Downscaling factor.
        seed: Seed for every random choice.
        validation_count: Images held out for validation.
        validation_crop_size: HR side of the centre crops used for validation.
        degradation: Degradation config mapping; default: the suite's ``degradation``.
        cache_bytes: Decoded images kept in memory (least recently used beyond this).
    """

    def __init__(
        self,
        data_dir: Path,
        suite: str = "train",
        crop_size: int = 128,
        scale: int = 4,
        seed: int = 0,
        validation_count: int = 8,
        validation_crop_size: int = 256,
        degradation: dict[str, Any] | None = None,
        cache_bytes: int = 1 << 30,
    ):
        self.suite = BuiltSuite.open(Path(data_dir), suite)
        self.crop_size = int(crop_size)
        self.scale = int(scale)
        self.seed = int(seed)
        self.validation_crop_size = int(validation_crop_size)
        if self.crop_size % self.scale or self.validation_crop_size % self.scale:
            raise UsageError(f"crop sizes {crop_size}, {validation_crop_size} must be multiples of scale {scale}")
        spec_degradation = degradation if degradation is not None else self.suite.spec.degradation
        self.degradation = DegradationConfig.from_dict(spec_degradation)
        entries = [entry for entry in self.suite.entries if entry.get("hr") is not None]
        usable = [e for e in entries if min(e["hr_width"], e["hr_height"]) >= self.crop_size]
        if not usable:
            raise UsageError(
                f"suite {suite} in {data_dir} has no HR image of at least {crop_size} px; "
                "build it with `op4ksr-bench build-dataset --suite train` or lower --crop-size"
            )

        def held_out_rank(entry: dict[str, Any]) -> str:
            return hashlib.sha256(f"{self.seed}:{entry['id']}".encode()).hexdigest()

        ranked = sorted(usable, key=held_out_rank)
        count = min(validation_count, len(ranked) - 1)
        big_enough = [e for e in ranked if min(e["hr_width"], e["hr_height"]) >= self.validation_crop_size]
        self.validation_entries = sorted(big_enough[:count], key=lambda e: e["id"])
        held = {e["id"] for e in self.validation_entries}
        self.train_entries = sorted((e for e in usable if e["id"] not in held), key=lambda e: e["id"])
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_bytes = int(cache_bytes)
        logger.info("%s: %d training images, %d held out for validation", suite, len(self.train_entries), len(held))

    def _image(self, entry: dict[str, Any]) -> np.ndarray:
        key = entry["id"]
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        image = read_image(self.suite.hr_path(entry))
        self._cache[key] = image
        while sum(item.nbytes for item in self._cache.values()) > self._cache_bytes and len(self._cache) > 1:
            self._cache.popitem(last=False)
        return image

    def batch(self, step: int, batch_size: int, rank: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Process ``rank``'s batch number ``step``: ``(lr [B, 3, c/s, c/s], hr [B, 3, c, c])`` float32 in [0, 1]."""
        rng = np.random.default_rng([self.seed, int(step), int(rank)])
        low, high = [], []
        for _ in range(batch_size):
            entry = self.train_entries[int(rng.integers(len(self.train_entries)))]
            image = self._image(entry)
            height, width = image.shape[:2]
            top = int(rng.integers(height - self.crop_size + 1))
            left = int(rng.integers(width - self.crop_size + 1))
            crop = image[top : top + self.crop_size, left : left + self.crop_size]
            if rng.uniform() < 0.5:
                crop = crop[:, ::-1]
            crop = np.ascontiguousarray(np.rot90(crop, k=int(rng.integers(4))))
            lr, _ = degrade(crop, self.scale, self.degradation, seed=int(rng.integers(2**62)))
            low.append(_to_chw(lr))
            high.append(_to_chw(crop))
        return torch.stack(low), torch.stack(high)

    def validation_pairs(self) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """Held-out centre crops: ``(id, lr [1, 3, v/s, v/s], hr [1, 3, v, v])``; fixed degradation seeds."""
        pairs = []
        size = self.validation_crop_size
        for entry in self.validation_entries:
            image = self._image(entry)
            height, width = image.shape[:2]
            top, left = (height - size) // 2, (width - size) // 2
            crop = np.ascontiguousarray(image[top : top + size, left : left + size])
            lr, _ = degrade(crop, self.scale, self.degradation, seed=seed_for(self.seed, entry["id"]))
            pairs.append((entry["id"], _to_chw(lr)[None], _to_chw(crop)[None]))
        return pairs


def _to_chw(array: np.ndarray) -> torch.Tensor:
    """``uint8 H x W x 3`` -> ``float32 [3, H, W]`` in ``[0, 1]``."""
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float().div_(255.0)
