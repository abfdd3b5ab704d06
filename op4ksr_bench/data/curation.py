"""Curation filters: measure each photograph once, then let each suite apply its thresholds.

Measurements (all on the 0-255 luminance ``Y = 0.299 R + 0.587 G + 0.114 B`` unless stated):

- ``jpeg_quality``: IJG quality (1-100) whose scaled standard luminance table best matches the file's first
  quantisation table; None for lossless files.
- ``hf_ratio``: share of spectral energy between 0.5 and 1.0 of Nyquist among 0.1-1.0 of Nyquist, median over
  the most detailed 512x512 tiles (Hann-windowed). An upscaled ("fake 4K") image has almost none: a x2 bicubic
  upscale drops it by an order of magnitude.
- ``sharpness``: variance of the Laplacian, median over the same tiles.
- ``noise_sigma``: Immerkaer's fast noise estimate (1996) on the whole image.
- ``phash``: 64-bit perceptual hash (``imagehash.phash``) of the whole image, as hex.
- block maps on a 16-pixel grid: mean gradient magnitude (detail) and standard deviation (flatness), used for
  content-aware crop selection (flat sky / fog crops are skipped).
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from op4ksr_bench.errors import UsageError

BLOCK = 16
"""Pixel pitch of the detail / flatness maps and of every crop offset."""

FLAT_BLOCK_STD = 2.0
"""A 16x16 block whose luminance std (0-255) is below this counts as flat."""

MEASURE_VERSION = 1
"""Bump when a measurement changes (invalidates measurement caches)."""

_IJG_LUMINANCE = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
     14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
    dtype=np.float64,
)  # fmt: skip


@dataclass(frozen=True)
class CurationConfig:
    """Thresholds of one suite (``curation:`` in its YAML); None disables a filter. Sizes in pixels."""

    min_long_side: int = 1024
    min_short_side: int = 1024
    max_long_side: int | None = None
    max_aspect: float = 2.5
    min_jpeg_quality: int | None = None
    min_hf_ratio: float | None = None
    min_sharpness: float | None = None
    max_noise_sigma: float | None = None
    max_flat_fraction: float = 0.5
    phash_distance: int = 8
    nr_iqa: dict | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CurationConfig:
        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"curation: unknown keys {unknown}; known: {sorted(known)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PhotoMeasurement:
    """What curation knows about one photograph (maps are ``float32`` ``(H // 16) x (W // 16)``)."""

    width: int
    height: int
    jpeg_quality: int | None
    hf_ratio: float
    sharpness: float
    noise_sigma: float
    phash: str
    flat_fraction: float
    detail_map: np.ndarray = field(repr=False)
    std_map: np.ndarray = field(repr=False)
    nr_iqa: dict[str, float] = field(default_factory=dict)

    def scalars(self) -> dict[str, Any]:
        """The JSON-serialisable measurements (no maps)."""
        return {
            "width": self.width, "height": self.height, "jpeg_quality": self.jpeg_quality,
            "hf_ratio": self.hf_ratio, "sharpness": self.sharpness, "noise_sigma": self.noise_sigma,
            "phash": self.phash, "flat_fraction": self.flat_fraction, "nr_iqa": dict(self.nr_iqa),
        }  # fmt: skip


# ------------------------------------------------------------------------------------------------ measurements


def luminance(image: np.ndarray) -> np.ndarray:
    """``uint8`` ``H x W x 3`` RGB -> ``float32`` ``H x W`` luminance in [0, 255] (BT.601 weights)."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return image.astype(np.float32) @ weights


def estimate_jpeg_quality(source: Path | bytes) -> int | None:
    """IJG quality (1-100) from a JPEG's luminance quantisation table; None if ``source`` is not a JPEG."""
    from PIL import Image

    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
        if image.format != "JPEG" or not getattr(image, "quantization", None):
            return None
        table = np.array(image.quantization[min(image.quantization)], dtype=np.float64)
    if table.size != 64:
        return None
    best_quality, best_error = 100, math.inf
    for quality in range(1, 101):
        scale = 5000.0 / quality if quality < 50 else 200.0 - 2.0 * quality
        expected = np.clip(np.floor((_IJG_LUMINANCE * scale + 50.0) / 100.0), 1, 255)
        error = float(np.abs(np.sort(expected) - np.sort(table)).sum())
        if error < best_error:
            best_quality, best_error = quality, error
    return best_quality


def block_maps(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per 16x16 block: mean gradient magnitude and luminance std (both ``float32``, ``(H//16) x (W//16)``)."""
    rows, cols = gray.shape[0] // BLOCK, gray.shape[1] // BLOCK
    cropped = gray[: rows * BLOCK, : cols * BLOCK]
    gradient = np.zeros_like(cropped)
    gradient[:, :-1] += np.abs(np.diff(cropped, axis=1))
    gradient[:-1, :] += np.abs(np.diff(cropped, axis=0))
    blocks = cropped.reshape(rows, BLOCK, cols, BLOCK)
    detail = gradient.reshape(rows, BLOCK, cols, BLOCK).mean(axis=(1, 3))
    std = blocks.std(axis=(1, 3))
    return detail.astype(np.float32), std.astype(np.float32)


def _detailed_tiles(gray: np.ndarray, detail: np.ndarray, tile: int = 512, count: int = 8) -> list[np.ndarray]:
    size = min(tile, gray.shape[0], gray.shape[1])
    size -= size % BLOCK
    step = size // BLOCK
    scores = []
    for row in range(0, detail.shape[0] - step + 1, step):
        for col in range(0, detail.shape[1] - step + 1, step):
            scores.append((-float(detail[row : row + step, col : col + step].mean()), row, col))
    scores.sort()
    return [gray[r * BLOCK : r * BLOCK + size, c * BLOCK : c * BLOCK + size] for _, r, c in scores[:count]]


def high_frequency_ratio(tile: np.ndarray) -> float:
    """Energy between 0.5 and 1.0 of Nyquist over energy between 0.1 and 1.0 of Nyquist (Hann-windowed)."""
    size_y, size_x = tile.shape
    window = np.outer(np.hanning(size_y), np.hanning(size_x)).astype(np.float32)
    spectrum = np.abs(np.fft.rfft2((tile - tile.mean()) * window)) ** 2
    frequency_y = np.fft.fftfreq(size_y)[:, None]
    frequency_x = np.fft.rfftfreq(size_x)[None, :]
    radius = np.sqrt(frequency_y**2 + frequency_x**2) / 0.5
    total = spectrum[(radius >= 0.1) & (radius <= 1.0)].sum()
    high = spectrum[(radius >= 0.5) & (radius <= 1.0)].sum()
    return float(high / total) if total > 0 else 0.0


def laplacian_variance(tile: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian (0-255 scale)."""
    laplacian = (
        tile[1:-1, :-2] + tile[1:-1, 2:] + tile[:-2, 1:-1] + tile[2:, 1:-1] - 4.0 * tile[1:-1, 1:-1]
    )  # fmt: skip
    return float(laplacian.var())


def noise_sigma(gray: np.ndarray) -> float:
    """Immerkaer's noise standard deviation estimate (0-255 scale)."""
    import cv2

    mask = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
    response = np.abs(cv2.filter2D(gray, -1, mask, borderType=cv2.BORDER_REFLECT_101))[1:-1, 1:-1]
    return float(math.sqrt(math.pi / 2.0) * response.mean() / 6.0)


def perceptual_hash(image: np.ndarray) -> str:
    """64-bit pHash (hex) of the image, computed on a 256 px-long-side area downscale."""
    import cv2
    import imagehash
    from PIL import Image

    height, width = image.shape[:2]
    factor = 256.0 / max(height, width)
    small = cv2.resize(
        image, (max(8, round(width * factor)), max(8, round(height * factor))), interpolation=cv2.INTER_AREA
    )
    return str(imagehash.phash(Image.fromarray(small)))


def hamming(hash_a: str, hash_b: str) -> int:
    """Bit distance between two hex perceptual hashes."""
    return bin(int(hash_a, 16) ^ int(hash_b, 16)).count("1")


def measure(image: np.ndarray, jpeg_quality: int | None) -> PhotoMeasurement:
    """All measurements of one ``uint8`` ``H x W x 3`` photograph."""
    gray = luminance(image)
    detail, std = block_maps(gray)
    tiles = _detailed_tiles(gray, detail)
    return PhotoMeasurement(
        width=int(image.shape[1]),
        height=int(image.shape[0]),
        jpeg_quality=jpeg_quality,
        hf_ratio=float(np.median([high_frequency_ratio(tile) for tile in tiles])) if tiles else 0.0,
        sharpness=float(np.median([laplacian_variance(tile) for tile in tiles])) if tiles else 0.0,
        noise_sigma=noise_sigma(gray),
        phash=perceptual_hash(image),
        flat_fraction=float((std < FLAT_BLOCK_STD).mean()) if std.size else 1.0,
        detail_map=detail,
        std_map=std,
    )


# ------------------------------------------------------------------------------------------------------ filters


def photo_rejection(measurement: PhotoMeasurement, config: CurationConfig) -> str | None:
    """The first reason ``config`` rejects a photograph (size, aspect, JPEG, fake 4K, sharpness, noise), or None."""
    long_side = max(measurement.width, measurement.height)
    short_side = min(measurement.width, measurement.height)
    size = f"{measurement.width}x{measurement.height}"
    if long_side < config.min_long_side or short_side < config.min_short_side:
        return (
            f"resolution: {size} (long side {long_side}, short side {short_side} px) below the minimum long side "
            f"{config.min_long_side} / short side {config.min_short_side} px"
        )
    if config.max_long_side is not None and long_side > config.max_long_side:
        return f"resolution: {size} long side {long_side} px above the maximum {config.max_long_side} px"
    if long_side / short_side > config.max_aspect:
        return f"aspect: {long_side / short_side:.2f} above the maximum {config.max_aspect}"
    quality = measurement.jpeg_quality
    if config.min_jpeg_quality is not None and quality is not None and quality < config.min_jpeg_quality:
        return f"jpeg: estimated quality {quality} below {config.min_jpeg_quality}"
    if config.min_hf_ratio is not None and measurement.hf_ratio < config.min_hf_ratio:
        return f"fake-4k: high-frequency energy ratio {measurement.hf_ratio:.4f} below {config.min_hf_ratio}"
    if config.min_sharpness is not None and measurement.sharpness < config.min_sharpness:
        return f"sharpness: Laplacian variance {measurement.sharpness:.1f} below {config.min_sharpness}"
    if config.max_noise_sigma is not None and measurement.noise_sigma > config.max_noise_sigma:
        return f"noise: estimated sigma {measurement.noise_sigma:.2f} above {config.max_noise_sigma}"
    if config.nr_iqa:
        metric, minimum = config.nr_iqa.get("metric"), config.nr_iqa.get("min")
        score = measurement.nr_iqa.get(metric)
        if score is not None and minimum is not None and score < minimum:
            return f"nr-iqa: {metric} {score:.3f} below {minimum}"
    return None


def _integral(values: np.ndarray) -> np.ndarray:
    table = np.zeros((values.shape[0] + 1, values.shape[1] + 1), dtype=np.float64)
    table[1:, 1:] = values.astype(np.float64).cumsum(axis=0).cumsum(axis=1)
    return table


def _window_sums(table: np.ndarray, rows: int, cols: int) -> np.ndarray:
    return table[rows:, cols:] - table[:-rows, cols:] - table[rows:, :-cols] + table[:-rows, :-cols]


@dataclass(frozen=True)
class CropChoice:
    """A crop in source pixels (``x, y, w, h``) with its mean block detail and flat-block fraction."""

    x: int
    y: int
    w: int
    h: int
    detail: float
    flat_fraction: float

    def box(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "w": self.w, "h": self.h}


def crop_candidates(measurement: PhotoMeasurement, width: int, height: int) -> list[CropChoice]:
    """Every ``width x height`` crop on the 16-pixel grid (both sizes multiples of 16), best detail first."""
    if width % BLOCK or height % BLOCK:
        raise UsageError(f"crop sizes must be multiples of {BLOCK}, got {width}x{height}")
    rows, cols = height // BLOCK, width // BLOCK
    detail, std = measurement.detail_map, measurement.std_map
    if rows > detail.shape[0] or cols > detail.shape[1]:
        return []
    detail_sums = _window_sums(_integral(detail), rows, cols) / (rows * cols)
    flat_sums = _window_sums(_integral((std < FLAT_BLOCK_STD).astype(np.float32)), rows, cols) / (rows * cols)
    order = np.lexsort((np.arange(detail_sums.size), -detail_sums.ravel()))
    candidates = []
    for index in order:
        row, col = divmod(int(index), detail_sums.shape[1])
        candidates.append(
            CropChoice(
                col * BLOCK, row * BLOCK, width, height, float(detail_sums[row, col]), float(flat_sums[row, col])
            )
        )
    return candidates


def select_crop(measurement: PhotoMeasurement, width: int, height: int, max_flat_fraction: float) -> CropChoice | None:
    """The most detailed crop whose flat fraction is at most ``max_flat_fraction`` (None if there is none)."""
    for candidate in crop_candidates(measurement, width, height):
        if candidate.flat_fraction <= max_flat_fraction:
            return candidate
    return None


def select_tiles(
    measurement: PhotoMeasurement, size: int, max_count: int, max_flat_fraction: float, max_overlap: float = 0.25
) -> list[CropChoice]:
    """Up to ``max_count`` square crops, greedily by detail, overlapping each other by at most ``max_overlap``."""
    chosen: list[CropChoice] = []
    for candidate in crop_candidates(measurement, size, size):
        if len(chosen) >= max_count:
            break
        if candidate.flat_fraction > max_flat_fraction:
            continue
        if all(_overlap(candidate, other) <= max_overlap for other in chosen):
            chosen.append(candidate)
    return chosen


def _overlap(first: CropChoice, second: CropChoice) -> float:
    width = max(0, min(first.x + first.w, second.x + second.w) - max(first.x, second.x))
    height = max(0, min(first.y + first.h, second.y + second.h) - max(first.y, second.y))
    return width * height / float(min(first.w * first.h, second.w * second.h))


def nr_iqa_scores(images: dict[str, np.ndarray], metric_name: str) -> tuple[dict[str, float], str | None]:
    """Score images with a no-reference metric when the metrics package and its weights are available.

    Returns:
        ``(scores, skip_reason)``: scores by key, or an empty dict and the one-line reason the filter was skipped.
    """
    try:
        from op4ksr_bench.metrics.scoring import create_metrics, score_images
    except ImportError as error:
        return {}, f"NR-IQA filter skipped: metrics package unavailable ({error})"
    from op4ksr_bench.errors import Op4ksrError

    try:
        metrics, _ = create_metrics([metric_name])
    except (Op4ksrError, KeyError, ValueError) as error:  # unknown metric or missing weights: say so, don't filter
        return {}, f"NR-IQA filter skipped: {error}"
    scores = {}
    for key, image in images.items():
        value = score_images(metrics, image, None).get(metric_name)
        if value is not None:
            scores[key] = float(value)
    return scores, None
