"""4K texture metrics from Diffusion-4K: the GLCM score and the compression ratio (no-reference, native).

GLCM score, exactly as Diffusion-4K's evaluation computes it:

1. grey = OpenCV's ``RGB2GRAY`` (fixed-point BT.601), quantised to 64 levels by ``grey // 4``;
2. split into non-overlapping 64x64 patches from the top-left (a remainder narrower than 64 px is left out);
3. per patch, scikit-image's ``graycomatrix(patch, [1, 2, 3, 4], [0, pi/4, pi/2, 3pi/4], levels=64,
   normed=True)``: a ``64 x 64 x 4 x 4`` array of co-occurrence frequencies, each (distance, angle) slice
   divided by its number of pairs;
4. the patch score is ``skimage.measure.shannon_entropy`` of that array: the base-2 entropy of the
   histogram of its values (Diffusion-4K's choice; note it is *not* the textbook GLCM entropy
   ``-sum p log p``);
5. the image score is the mean over patches. Higher means richer fine texture.

The computation here is vectorised (per-chunk ``bincount`` of co-occurrence codes and of their counts) and
equals the per-patch scikit-image loop to floating-point precision (``tests/calibration``).

Compression ratio: raw RGB bytes (``H * W * 3``) over the bytes of a JPEG at quality 95 written by Pillow
(4:2:0 chroma subsampling, baseline, no optimisation); the Pillow and libjpeg versions are recorded. A
smoother image compresses more, so lower is better (more detail).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from op4ksr_bench.imageio import check_rgb8
from op4ksr_bench.metrics.base import Metric

GLCM_LEVELS = 64
GLCM_PATCH = 64
GLCM_DISTANCES = (1, 2, 3, 4)
GLCM_ANGLES = (0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4)
PATCH_CHUNK = 64
"""Patches processed together; keeps the per-chunk count arrays at a few MB."""

JPEG_QUALITY = 95
JPEG_SUBSAMPLING = 2  # Pillow's code for 4:2:0


def grey_levels(image: np.ndarray) -> np.ndarray:
    """``uint8`` RGB -> OpenCV grey quantised to ``GLCM_LEVELS`` levels (``grey // 4``). ``uint8`` ``H x W``."""
    import cv2

    check_rgb8(image, "image")
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return grey // (256 // GLCM_LEVELS)


def _offsets() -> tuple[tuple[tuple[int, int], int], ...]:
    """Distinct (row, column) offsets of scikit-image's (distance, angle) grid with their multiplicity."""
    counts: dict[tuple[int, int], int] = {}
    for distance in GLCM_DISTANCES:
        for angle in GLCM_ANGLES:
            offset = (round(math.sin(angle) * distance), round(math.cos(angle) * distance))
            counts[offset] = counts.get(offset, 0) + 1
    return tuple(counts.items())


def _pairs(offset: tuple[int, int]) -> int:
    return (GLCM_PATCH - abs(offset[0])) * (GLCM_PATCH - abs(offset[1]))


def _value_keys() -> tuple[Mapping[int, np.ndarray], int, int]:
    """Map every possible normalised value ``c / N`` to a key shared by equal values across pair counts ``N``.

    Returns ``({N: keys[c] for c in 0..N}, number_of_keys, key_of_zero)``.
    """
    totals = sorted({_pairs(offset) for offset, _ in _offsets()})
    values = np.concatenate([np.arange(total + 1, dtype=np.float64) / total for total in totals])
    unique, inverse = np.unique(values, return_inverse=True)
    keys, start = {}, 0
    for total in totals:
        keys[total] = inverse[start : start + total + 1]
        keys[total].flags.writeable = False
        start += total + 1
    return MappingProxyType(keys), len(unique), int(np.searchsorted(unique, 0.0))


OFFSETS = _offsets()
"""The distinct offsets with their multiplicity (constants of the GLCM settings, computed once at import)."""
VALUE_KEYS = _value_keys()
"""``({N: keys}, number_of_keys, key_of_zero)`` for the pair counts of :data:`OFFSETS` (read-only arrays)."""


def glcm_patch_scores(levels: np.ndarray) -> np.ndarray:
    """Diffusion-4K GLCM entropy of every full 64x64 patch of a 64-level grey image. ``float64`` ``[patches]``."""
    rows, cols = levels.shape[0] // GLCM_PATCH, levels.shape[1] // GLCM_PATCH
    if rows == 0 or cols == 0:
        raise ValueError(
            f"glcm needs at least one {GLCM_PATCH}x{GLCM_PATCH} patch, got {levels.shape[1]}x{levels.shape[0]}"
        )
    patches = (
        levels[: rows * GLCM_PATCH, : cols * GLCM_PATCH]
        .reshape(rows, GLCM_PATCH, cols, GLCM_PATCH)
        .swapaxes(1, 2)
        .reshape(rows * cols, GLCM_PATCH, GLCM_PATCH)
        .astype(np.int32)
    )
    return np.concatenate(
        [_chunk_scores(patches[start : start + PATCH_CHUNK]) for start in range(0, len(patches), PATCH_CHUNK)]
    )


def _chunk_scores(patches: np.ndarray) -> np.ndarray:
    """Scores of ``[P, 64, 64]`` int32 level patches: per offset, the GLCM of every patch by one ``bincount``,
    then the number of cells holding each count (value ``count / pairs``), merged over offsets by value."""
    keys, key_count, _ = VALUE_KEYS
    count = patches.shape[0]
    cells = GLCM_LEVELS * GLCM_LEVELS
    entries = cells * len(GLCM_DISTANCES) * len(GLCM_ANGLES)
    patch_index = np.arange(count, dtype=np.int64)[:, None]
    scaled = patches * GLCM_LEVELS + (np.arange(count, dtype=np.int32) * cells)[:, None, None]
    merged_ids, merged_weights = [], []
    for (row, col), multiplicity in OFFSETS:
        first = scaled[:, max(0, -row) : GLCM_PATCH - max(0, row), max(0, -col) : GLCM_PATCH - max(0, col)]
        second = patches[:, max(0, row) : GLCM_PATCH - max(0, -row), max(0, col) : GLCM_PATCH - max(0, -col)]
        glcm = np.bincount((first + second).ravel(), minlength=count * cells).reshape(count, cells)
        width = int(glcm.max()) + 1
        glcm += patch_index * width
        counts_of_counts = np.bincount(glcm.ravel(), minlength=count * width)
        (flat,) = np.nonzero(counts_of_counts)
        patch, cell_count = np.divmod(flat, width)
        merged_ids.append(patch * key_count + keys[_pairs((row, col))][cell_count])
        merged_weights.append(multiplicity * counts_of_counts[flat])
    ids, inverse = np.unique(np.concatenate(merged_ids), return_inverse=True)
    cells_per_value = np.bincount(inverse, weights=np.concatenate(merged_weights).astype(np.float64))
    probability = cells_per_value / entries
    return -np.bincount(ids // key_count, weights=probability * np.log2(probability), minlength=count)


def glcm_score(image: np.ndarray) -> float:
    """Diffusion-4K GLCM score of ``uint8`` ``H x W x 3`` RGB: mean patch entropy (bits)."""
    return float(glcm_patch_scores(grey_levels(image)).mean())


def jpeg_bytes(image: np.ndarray, quality: int = JPEG_QUALITY) -> int:
    """Size in bytes of the pinned JPEG encoding (Pillow, ``quality``, 4:2:0, baseline, not optimised)."""
    from PIL import Image

    check_rgb8(image, "image")
    buffer = io.BytesIO()
    Image.fromarray(image, mode="RGB").save(
        buffer, format="JPEG", quality=quality, subsampling=JPEG_SUBSAMPLING, optimize=False, progressive=False
    )
    return buffer.tell()


def compression_ratio(image: np.ndarray, quality: int = JPEG_QUALITY) -> float:
    """Raw RGB bytes over JPEG bytes (quality ``quality``)."""
    return float(image.size) / jpeg_bytes(image, quality)


def encoder_versions() -> dict[str, str]:
    """The pinned encoder: Pillow's version and the libjpeg it was built with."""
    import PIL
    from PIL import features

    return {"pillow": PIL.__version__, "libjpeg": str(features.version("jpg"))}


class GLCMScore(Metric):
    """Diffusion-4K GLCM score (mean entropy of 64x64-patch co-occurrence values; higher = richer texture)."""

    name: ClassVar[str] = "glcm"
    default: ClassVar[bool] = False
    display_order: ClassVar[int | None] = 17
    score_range: ClassVar[tuple[float, float]] = (0.0, math.inf)
    kind: ClassVar = "NR"
    higher_is_better: ClassVar[bool] = True

    def settings(self) -> dict[str, Any]:
        return {
            "grey": "opencv RGB2GRAY // 4",
            "levels": GLCM_LEVELS,
            "patch": GLCM_PATCH,
            "distances": list(GLCM_DISTANCES),
            "angles": "0, pi/4, pi/2, 3pi/4",
            "entropy": "skimage shannon_entropy of the normed GLCM (Diffusion-4K)",
            "policy": "native",
        }

    def __call__(self, pred: np.ndarray, ref: np.ndarray | None = None) -> dict[str, float]:
        return {self.name: glcm_score(pred)}


class CompressionRatio(Metric):
    """Raw bytes over JPEG quality-95 bytes (lower = more fine detail)."""

    name: ClassVar[str] = "compression-ratio"
    default: ClassVar[bool] = False
    display_order: ClassVar[int | None] = 18
    score_range: ClassVar[tuple[float, float]] = (0.0, math.inf)
    kind: ClassVar = "NR"
    higher_is_better: ClassVar[bool] = False

    def settings(self) -> dict[str, Any]:
        return {
            "encoder": "Pillow JPEG",
            **encoder_versions(),
            "quality": JPEG_QUALITY,
            "subsampling": "4:2:0",
            "optimize": False,
            "policy": "native",
        }

    def __call__(self, pred: np.ndarray, ref: np.ndarray | None = None) -> dict[str, float]:
        return {self.name: compression_ratio(pred)}
