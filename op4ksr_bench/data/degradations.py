"""Real-ESRGAN-style second-order degradation, scaled for 4K; the one implementation for suites and training.

``degrade(hr, scale, config, seed)`` turns a ``uint8`` ``H x W x 3`` image (``H`` and ``W`` divisible by ``scale``)
into an ``(H / scale) x (W / scale)`` low-resolution image and returns the exact parameters it drew. The pipeline:

1. first stage: blur (one of six Gaussian-family kernels, or sinc) -> random resize (up / down / keep, with area,
   bilinear or bicubic) -> Gaussian or Poisson noise (colour or grey) -> JPEG;
2. second stage (the blur is applied with probability ``second.blur_prob``): the same steps with their own ranges,
   the resize relative to the final LR size;
3. final: resize to ``H/scale x W/scale`` + sinc low-pass (with probability ``final.sinc_prob``) and JPEG, in a
   random order.

**4K scaling rule.** Real-ESRGAN's blur ranges are absolute pixels tuned on DF2K photographs (about 2K wide; the
400 px training crops are pieces of those). Scene blur scales with the capture resolution, so every *spatial*
blur parameter is multiplied by ``spatial_scale`` (kernel sizes: ``2 * floor(k * s / 2) + 1``; sigmas: ``* s``;
sinc cutoffs: ``/ s``). The suites use ``spatial_scale: 2`` for 4K photographs (3840 / 1920). It is a property of
the *source photograph*, not of the array handed in, so a trainer degrading 512 px crops of 4K photographs uses
the same value as the 4K benchmark. Resize factors are relative and noise / JPEG act per pixel and per 8x8 block
of the stage they occur in, so they are not scaled. See docs/data/degradation.md.

Determinism: one ``numpy.random.Generator`` (PCG64) seeded with ``seed`` draws every parameter in a fixed order;
OpenCV filtering, resizing and JPEG coding are deterministic, so the same inputs and seed give identical bytes.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from op4ksr_bench.data.kernels import KERNEL_FAMILIES, build_kernel, sinc_kernel
from op4ksr_bench.errors import ImageError, UsageError
from op4ksr_bench.seeds import seed_for as seed_for  # the build's per-image seed, imported from here by callers

RESIZE_MODES = ("area", "bilinear", "bicubic")


@dataclass(frozen=True)
class BlurSpec:
    """Blur of one stage. Sizes are odd kernel widths (pixels) before ``spatial_scale``."""

    kernel_size_range: tuple[int, int] = (7, 21)
    families: tuple[str, ...] = KERNEL_FAMILIES
    family_probs: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sigma_range: tuple[float, float] = (0.2, 3.0)
    generalized_beta_range: tuple[float, float] = (0.5, 4.0)
    plateau_beta_range: tuple[float, float] = (1.0, 2.0)
    sinc_prob: float = 0.1


@dataclass(frozen=True)
class ResizeSpec:
    """Random resize: ``probs`` for (up, down, keep); ``range`` bounds the factor."""

    probs: tuple[float, float, float] = (0.2, 0.7, 0.1)
    range: tuple[float, float] = (0.15, 1.5)
    modes: tuple[str, ...] = RESIZE_MODES


@dataclass(frozen=True)
class NoiseSpec:
    """Gaussian noise (``sigma_range`` on the 0-255 scale) with ``gaussian_prob``, else Poisson noise."""

    gaussian_prob: float = 0.5
    sigma_range: tuple[float, float] = (1.0, 30.0)
    poisson_scale_range: tuple[float, float] = (0.05, 3.0)
    gray_prob: float = 0.4


@dataclass(frozen=True)
class StageSpec:
    """One degradation stage: blur (with ``blur_prob``), resize, noise, JPEG (``jpeg_range`` = quality)."""

    blur_prob: float = 1.0
    blur: BlurSpec = field(default_factory=BlurSpec)
    resize: ResizeSpec = field(default_factory=ResizeSpec)
    noise: NoiseSpec = field(default_factory=NoiseSpec)
    jpeg_range: tuple[int, int] = (30, 95)


@dataclass(frozen=True)
class FinalSpec:
    """Final resize to the LR size + optional sinc, and JPEG, in random order."""

    sinc_prob: float = 0.8
    sinc_kernel_size_range: tuple[int, int] = (7, 21)
    resize_modes: tuple[str, ...] = RESIZE_MODES
    jpeg_range: tuple[int, int] = (30, 95)


def _second_stage_default() -> StageSpec:
    return StageSpec(
        blur_prob=0.8,
        blur=BlurSpec(sigma_range=(0.2, 1.5)),
        resize=ResizeSpec(probs=(0.3, 0.4, 0.3), range=(0.3, 1.2)),
        noise=NoiseSpec(sigma_range=(1.0, 25.0), poisson_scale_range=(0.05, 2.5)),
    )


@dataclass(frozen=True)
class DegradationConfig:
    """Every parameter of the pipeline. Defaults are Real-ESRGAN x4plus's, with ``spatial_scale = 1``."""

    spatial_scale: float = 1.0
    first: StageSpec = field(default_factory=StageSpec)
    second: StageSpec = field(default_factory=_second_stage_default)
    final: FinalSpec = field(default_factory=FinalSpec)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DegradationConfig:
        """Build from a (possibly partial) nested dict; missing keys take the defaults, unknown keys raise."""
        config = _from_dict(cls, data or {}, "degradation")
        config.check()
        return config

    def to_dict(self) -> dict[str, Any]:
        """Full nested dict (tuples as lists) that :meth:`from_dict` reads back to an equal config."""
        return _to_plain(dataclasses.asdict(self))

    def check(self) -> None:
        """Raise ``UsageError`` naming the first invalid field."""
        if not 0.25 <= self.spatial_scale <= 16:
            raise UsageError(f"degradation.spatial_scale must be in [0.25, 16], got {self.spatial_scale}")
        for stage_name, stage in (("first", self.first), ("second", self.second)):
            blur = stage.blur
            if len(blur.families) != len(blur.family_probs) or abs(sum(blur.family_probs) - 1) > 1e-6:
                raise UsageError(f"degradation.{stage_name}.blur: family_probs must match families and sum to 1")
            unknown = set(blur.families) - set(KERNEL_FAMILIES)
            if unknown:
                raise UsageError(f"degradation.{stage_name}.blur: unknown kernel families {sorted(unknown)}")
            _check_odd_range(blur.kernel_size_range, f"degradation.{stage_name}.blur.kernel_size_range")
            if abs(sum(stage.resize.probs) - 1) > 1e-6:
                raise UsageError(f"degradation.{stage_name}.resize.probs must sum to 1")
            _check_modes(stage.resize.modes, f"degradation.{stage_name}.resize.modes")
            _check_jpeg(stage.jpeg_range, f"degradation.{stage_name}.jpeg_range")
        _check_odd_range(self.final.sinc_kernel_size_range, "degradation.final.sinc_kernel_size_range")
        _check_modes(self.final.resize_modes, "degradation.final.resize_modes")
        _check_jpeg(self.final.jpeg_range, "degradation.final.jpeg_range")


def _check_odd_range(bounds: tuple[int, int], name: str) -> None:
    low, high = bounds
    if low < 1 or high < low or low % 2 == 0 or high % 2 == 0:
        raise UsageError(f"{name} must be two odd sizes low <= high, got {list(bounds)}")


def _check_modes(modes: tuple[str, ...], name: str) -> None:
    if not modes or set(modes) - set(RESIZE_MODES):
        raise UsageError(f"{name} must be a non-empty subset of {list(RESIZE_MODES)}, got {list(modes)}")


def _check_jpeg(bounds: tuple[int, int], name: str) -> None:
    if not 1 <= bounds[0] <= bounds[1] <= 100:
        raise UsageError(f"{name} must satisfy 1 <= low <= high <= 100, got {list(bounds)}")


def _from_dict(kind: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise UsageError(f"{where} must be a mapping, got {type(data).__name__}")
    fields = {item.name: item for item in dataclasses.fields(kind)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UsageError(f"{where}: unknown keys {unknown}; known: {sorted(fields)}")
    defaults = kind()
    values = {}
    for name, value in data.items():
        default = getattr(defaults, name)
        if dataclasses.is_dataclass(default):
            values[name] = _from_dict(type(default), value, f"{where}.{name}")
        elif isinstance(default, tuple):
            if not isinstance(value, list | tuple):
                raise UsageError(f"{where}.{name} must be a list, got {value!r}")
            values[name] = tuple(value)
        else:
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise UsageError(f"{where}.{name} must be a number, got {value!r}")
            values[name] = float(value)
    return dataclasses.replace(defaults, **values)


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _to_plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_to_plain(item) for item in value]
    return value


# --------------------------------------------------------------------------------------------------- operations


def _cv2():
    import cv2

    return cv2


def _scaled_size(size: int, spatial_scale: float) -> int:
    return 2 * int(math.floor(size * spatial_scale / 2)) + 1


def _draw_odd(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    choices = np.arange(bounds[0], bounds[1] + 1, 2)
    return int(rng.choice(choices))


def _draw_sinc(rng: np.random.Generator, size: int, spatial_scale: float, wide: bool) -> tuple[np.ndarray, dict]:
    low = math.pi / 3 if (size < 13 or not wide) else math.pi / 5
    cutoff = float(rng.uniform(low, math.pi)) / spatial_scale
    scaled = _scaled_size(size, spatial_scale)
    return sinc_kernel(scaled, cutoff), {"family": "sinc", "size": scaled, "cutoff": cutoff}


def _draw_blur(rng: np.random.Generator, spec: BlurSpec, spatial_scale: float) -> tuple[np.ndarray, dict]:
    size = _draw_odd(rng, spec.kernel_size_range)
    if rng.uniform() < spec.sinc_prob:
        return _draw_sinc(rng, size, spatial_scale, wide=True)
    family = str(rng.choice(np.array(spec.families), p=np.array(spec.family_probs)))
    sigma_x = float(rng.uniform(*spec.sigma_range))
    sigma_y = float(rng.uniform(*spec.sigma_range))
    rotation = float(rng.uniform(-math.pi, math.pi))
    beta_range = spec.plateau_beta_range if family.startswith("plateau") else spec.generalized_beta_range
    beta = float(rng.uniform(beta_range[0], 1.0) if rng.uniform() < 0.5 else rng.uniform(1.0, beta_range[1]))
    if family in ("iso", "aniso"):
        beta = 1.0
    if family.endswith("iso") and not family.endswith("aniso"):
        sigma_y, rotation = sigma_x, 0.0
    scaled = _scaled_size(size, spatial_scale)
    sigma_x, sigma_y = sigma_x * spatial_scale, sigma_y * spatial_scale
    kernel = build_kernel(family, scaled, sigma_x, sigma_y, rotation, beta)
    record = {"family": family, "size": scaled, "sigma_x": sigma_x, "sigma_y": sigma_y, "rotation": rotation}
    record["beta"] = beta
    return kernel, record


def _filter(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    cv2 = _cv2()
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101)


def _resize(image: np.ndarray, width: int, height: int, mode: str) -> np.ndarray:
    cv2 = _cv2()
    flags = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}[mode]
    if image.shape[1] == width and image.shape[0] == height:
        return image
    return cv2.resize(image, (max(1, width), max(1, height)), interpolation=flags)


def _add_noise(rng: np.random.Generator, image: np.ndarray, spec: NoiseSpec) -> tuple[np.ndarray, dict]:
    gray = bool(rng.uniform() < spec.gray_prob)
    if rng.uniform() < spec.gaussian_prob:
        sigma = float(rng.uniform(*spec.sigma_range))
        shape = image.shape[:2] + ((1,) if gray else (3,))
        noise = rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma / 255.0)
        noisy_image = image + noise
        np.clip(noisy_image, 0.0, 1.0, out=noisy_image)
        return noisy_image, {"type": "gaussian", "sigma": sigma, "gray": gray}
    scale = float(rng.uniform(*spec.poisson_scale_range))
    source = image.mean(axis=2, keepdims=True) if gray else image
    quantised = np.round(np.clip(source, 0.0, 1.0) * 255.0)
    levels = int(np.count_nonzero(np.bincount(quantised.astype(np.uint8).ravel(), minlength=256)))
    values = float(2 ** math.ceil(math.log2(max(levels, 2))))
    base = (quantised / 255.0).astype(np.float32)
    noisy = _poisson(rng, base * np.float32(values)) / np.float32(values)
    noise = (noisy - base) * np.float32(scale)
    noisy_image = image + noise
    np.clip(noisy_image, 0.0, 1.0, out=noisy_image)
    return noisy_image, {"type": "poisson", "scale": scale, "gray": gray, "levels": values}


POISSON_EXACT_BELOW = 32.0
"""Poisson rates below this are sampled exactly; above it ``round(N(rate, rate))`` (error < 1% in std), 6x faster."""


def _poisson(rng: np.random.Generator, rate: np.ndarray) -> np.ndarray:
    """Poisson samples of ``rate`` (float32 array), exact for small rates and normal-approximated for large ones."""
    samples = np.round(rate + np.sqrt(rate) * rng.standard_normal(rate.shape, dtype=np.float32))
    small = rate < POISSON_EXACT_BELOW
    samples[small] = rng.poisson(rate[small])
    return np.maximum(samples, 0.0).astype(np.float32)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    cv2 = _cv2()
    as_uint8 = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", as_uint8, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 3-channel arrays
        raise ImageError("JPEG encoding failed inside the degradation pipeline")
    return cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED).astype(np.float32) / np.float32(255.0)


def _draw_resize_factor(rng: np.random.Generator, spec: ResizeSpec) -> tuple[str, float]:
    direction = str(rng.choice(np.array(["up", "down", "keep"]), p=np.array(spec.probs)))
    if direction == "up":
        return direction, float(rng.uniform(1.0, spec.range[1]))
    if direction == "down":
        return direction, float(rng.uniform(spec.range[0], 1.0))
    return direction, 1.0


def _stage(
    rng: np.random.Generator,
    image: np.ndarray,
    stage: StageSpec,
    spatial_scale: float,
    reference_size: tuple[int, int],
) -> tuple[np.ndarray, dict]:
    record: dict[str, Any] = {}
    if rng.uniform() < stage.blur_prob:
        kernel, record["blur"] = _draw_blur(rng, stage.blur, spatial_scale)
        image = _filter(image, kernel)
    else:
        record["blur"] = None
    direction, factor = _draw_resize_factor(rng, stage.resize)
    mode = str(rng.choice(np.array(stage.resize.modes)))
    height, width = reference_size
    new_width, new_height = max(1, int(width * factor)), max(1, int(height * factor))
    image = _resize(image, new_width, new_height, mode)
    np.clip(image, 0.0, 1.0, out=image)
    record["resize"] = {"direction": direction, "factor": factor, "mode": mode, "size": [new_width, new_height]}
    image, record["noise"] = _add_noise(rng, image, stage.noise)
    quality = int(rng.integers(stage.jpeg_range[0], stage.jpeg_range[1] + 1))
    image = _jpeg(image, quality)
    record["jpeg_quality"] = quality
    return image, record


def degrade(hr: np.ndarray, scale: int, config: DegradationConfig, seed: int) -> tuple[np.ndarray, dict]:
    """Degrade an HR image into its LR counterpart.

    Args:
        hr: ``uint8`` ``H x W x 3`` RGB; ``H`` and ``W`` divisible by ``scale``.
        scale: Integer downscaling factor (4 for the 4KSR suites).
        config: Pipeline parameters.
        seed: Per-image seed (``seed_for(suite_seed, image_id)``).

    Returns:
        ``(lr, params)``: ``uint8`` ``(H/scale) x (W/scale) x 3`` and the drawn parameters (JSON-serialisable).

    Raises:
        ImageError: ``hr`` is not ``uint8`` ``H x W x 3`` or its size is not divisible by ``scale``.
    """
    if not isinstance(hr, np.ndarray) or hr.dtype != np.uint8 or hr.ndim != 3 or hr.shape[2] != 3:
        raise ImageError(f"degrade() needs uint8 HxWx3, got shape={getattr(hr, 'shape', None)}")
    height, width = hr.shape[:2]
    if scale < 1 or height % scale or width % scale:
        raise ImageError(f"degrade(): {width}x{height} is not divisible by scale {scale}; crop it first")
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    lr_height, lr_width = height // scale, width // scale
    image = hr.astype(np.float32) / np.float32(255.0)
    params: dict[str, Any] = {"seed": int(seed), "scale": int(scale), "spatial_scale": config.spatial_scale}
    image, params["first"] = _stage(rng, image, config.first, config.spatial_scale, (height, width))
    image, params["second"] = _stage(rng, image, config.second, config.spatial_scale, (lr_height, lr_width))
    final = config.final
    resize_mode = str(rng.choice(np.array(final.resize_modes)))
    if rng.uniform() < final.sinc_prob:
        size = _draw_odd(rng, final.sinc_kernel_size_range)
        sinc, sinc_record = _draw_sinc(rng, size, config.spatial_scale, wide=False)
    else:
        sinc, sinc_record = None, None
    quality = int(rng.integers(final.jpeg_range[0], final.jpeg_range[1] + 1))
    order = "resize_sinc_jpeg" if rng.uniform() < 0.5 else "jpeg_resize_sinc"
    if order == "jpeg_resize_sinc":
        image = _jpeg(image, quality)
    image = _resize(image, lr_width, lr_height, resize_mode)
    if sinc is not None:
        image = _filter(image, sinc)
    if order == "resize_sinc_jpeg":
        image = _jpeg(image, quality)
    params["final"] = {"order": order, "resize_mode": resize_mode, "sinc": sinc_record, "jpeg_quality": quality}
    lr = np.clip(np.round(np.clip(image, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(lr), params
