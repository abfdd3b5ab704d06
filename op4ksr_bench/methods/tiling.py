"""The tiling engine: run any method tile by tile and blend the tiles back into one image.

Geometry (all sizes in OUTPUT pixels, each a multiple of the scale factor):

* the grid origin is the top-left corner ``(0, 0)``; tiles start at ``0, stride, 2 * stride, ...`` with
  ``stride = tile - overlap``, and the last tile of each row and column is snapped to the far image edge
  (it starts at ``length - tile``), as the diffusion SR tiled samplers do, so the far seam may be closer;
* an image shorter than ``tile`` along an axis is one tile along that axis;
* each tile's LR input is the exact LR crop ``[y / s, (y + tile) / s)``; nothing is padded or resized.

Blending: every tile gets a separable weight ``w_row(y) * w_col(x)``; along each axis the per-tile weights
are divided by their sum over tiles at that pixel, so at every output pixel the weights of all tiles that
cover it sum to one (and a constant image stays constant through any blend):

* ``none``: each pixel comes from one tile, the one whose centre is nearest (cut at the middle of the overlap);
* ``linear``: a linear ramp across each actual overlap with a neighbour (feathering), 1 elsewhere;
* ``gaussian``: ``exp(-((u - (T - 1) / 2) / T)^2 / (2 * 0.01))`` over the tile's ``T`` pixels, the
  Gaussian of variance 0.01 in tile-normalised coordinates used by the tiled samplers of the diffusion SR
  family (StableSR, Mixture-of-Diffusers, MultiDiffusion-style pipelines).

The tile stride is a spatial period the tiling may imprint; :meth:`TiledMethod.periods` reports it so the
periodic-artifact score (PAS) and the seam metric test it.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, get_args

from op4ksr_bench.errors import UsageError
from op4ksr_bench.methods.base import Method, describe_bad_values
from op4ksr_bench.tilegrid import tile_starts

if TYPE_CHECKING:
    import torch

Blend = Literal["none", "linear", "gaussian"]
BLENDS: tuple[str, ...] = get_args(Blend)
GAUSSIAN_VARIANCE = 0.01
"""Variance of the Gaussian tile weight in tile-normalised coordinates (StableSR's ``_gaussian_weights``)."""


def _raw_profile(length: int, blend: str, before: int, after: int) -> list[float]:
    """Unnormalised weight along one tile of ``length`` pixels that overlaps ``before``/``after`` pixels."""
    if blend == "gaussian":
        middle = (length - 1) / 2
        return [math.exp(-(((u - middle) / length) ** 2) / (2 * GAUSSIAN_VARIANCE)) for u in range(length)]
    if blend == "linear":
        weights = []
        for u in range(length):
            weight = 1.0
            if before > 0 and u < before:
                weight = min(weight, (u + 0.5) / before)
            if after > 0 and u >= length - after:
                weight = min(weight, (length - u - 0.5) / after)
            weights.append(weight)
        return weights
    return [1.0] * length


def axis_weights(length: int, tile: int, stride: int, blend: str) -> tuple[list[int], list[list[float]]]:
    """Tile starts and their normalised 1-D weights along one axis.

    Returns:
        ``(starts, weights)`` where ``weights[i]`` has ``min(tile, length)`` values and, at every pixel, the
        weights of the tiles covering it sum to one.
    """
    starts = tile_starts(length, tile, stride)
    size = min(tile, length)
    if blend == "none":
        # Cut every overlap at its middle (the nearest tile centre wins; ties go to the earlier tile).
        profiles = []
        for index, start in enumerate(starts):
            low = start if index == 0 else (start + starts[index - 1] + size) // 2
            high = start + size if index == len(starts) - 1 else (starts[index + 1] + start + size) // 2
            profiles.append([1.0 if low <= start + u < high else 0.0 for u in range(size)])
        return starts, profiles
    profiles = []
    for index, start in enumerate(starts):
        before = starts[index - 1] + size - start if index > 0 else 0
        after = start + size - starts[index + 1] if index < len(starts) - 1 else 0
        profiles.append(_raw_profile(size, blend, max(before, 0), max(after, 0)))
    total = [0.0] * length
    for start, profile in zip(starts, profiles, strict=True):
        for u, weight in enumerate(profile):
            total[start + u] += weight
    return starts, [[w / total[s + u] for u, w in enumerate(p)] for s, p in zip(starts, profiles, strict=True)]


class TiledMethod(Method):
    """Wrap a method so that it runs tile by tile (see the module docstring for the exact geometry).

    Args:
        inner: The method to run on each tile (any in-process method).
        tile: Tile size in output pixels (a multiple of the scale).
        overlap: Overlap between neighbouring tiles in output pixels (a multiple of the scale, < tile).
        blend: ``none``, ``linear`` or ``gaussian``.
    """

    def __init__(self, inner: Method, tile: int, overlap: int = 0, blend: str = "gaussian") -> None:
        scale = inner.scale
        for key, value in (("tile", tile), ("overlap", overlap)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise UsageError(f"--opt {key}={value!r} must be a non-negative integer (output pixels)")
            if value % scale:
                raise UsageError(f"--opt {key}={value} must be a multiple of the scale x{scale} (output pixels)")
        if tile < scale:
            raise UsageError(f"--opt tile={tile} must be at least the scale x{scale}")
        if overlap >= tile:
            raise UsageError(f"--opt overlap={overlap} must be smaller than tile={tile}")
        if blend not in BLENDS:
            raise UsageError(f"--opt blend={blend!r} is not one of {', '.join(BLENDS)}")
        if getattr(inner, "runs_in_process", True) is False:
            raise UsageError(f"{inner.card.name} does not run in this process and cannot be tiled here")
        self.inner = inner
        self.progress: tuple[int, int] | None = None
        self.local_options = inner.local_options
        self.tile = tile
        self.overlap = overlap
        self.stride = tile - overlap
        self.blend = blend
        self.card = replace(
            inner.card,
            name=f"{inner.card.name}+tile{tile}-{overlap}-{blend}",
            display_name=f"{inner.card.display_name} (tiled {tile}/{overlap}, {blend})",
            patch_free=False,
            default_tile=tile,
            default_overlap=overlap,
        )
        super().__init__(scale=scale, device=inner.device, dtype=inner.dtype)

    def upscale(self, lr: torch.Tensor) -> torch.Tensor:
        import torch

        scale = self.scale
        _, channels, height, width = lr.shape
        out_height, out_width = height * scale, width * scale
        row_starts, row_weights = axis_weights(out_height, self.tile, self.stride, self.blend)
        col_starts, col_weights = axis_weights(out_width, self.tile, self.stride, self.blend)
        tile_height, tile_width = min(self.tile, out_height), min(self.tile, out_width)
        output = torch.zeros((1, channels, out_height, out_width), dtype=torch.float32, device=lr.device)
        self.progress = (0, len(row_starts) * len(col_starts))  # tiles done, of; read by the runner's heartbeat
        for row_start, row_weight in zip(row_starts, row_weights, strict=True):
            weight_y = torch.tensor(row_weight, dtype=torch.float32, device=lr.device)[:, None]
            for col_start, col_weight in zip(col_starts, col_weights, strict=True):
                weight_x = torch.tensor(col_weight, dtype=torch.float32, device=lr.device)[None, :]
                crop = lr[
                    :,
                    :,
                    row_start // scale : (row_start + tile_height) // scale,
                    col_start // scale : (col_start + tile_width) // scale,
                ]
                result = self.inner.upscale(crop)
                expected = (1, channels, tile_height, tile_width)
                if tuple(result.shape) != expected:
                    raise ValueError(
                        f"{self.inner.card.name} returned {tuple(result.shape)} for a tile, expected {expected}"
                    )
                low, high = float(result.min()), float(result.max())
                if not (0.0 <= low and high <= 1.0):  # also catches NaN: the blend must not hide a bad tile
                    problem = describe_bad_values(result) or f"min {low!r}, max {high!r}"
                    raise ValueError(
                        f"{self.inner.card.name} returned bad values for a tile at output y {row_start}, x {col_start} "
                        f"({tile_height}x{tile_width}, positions within the tile): {problem}"
                    )
                output[:, :, row_start : row_start + tile_height, col_start : col_start + tile_width].addcmul_(
                    result.to(device=lr.device, dtype=torch.float32), weight_y * weight_x
                )
                self.progress = (self.progress[0] + 1, self.progress[1])
        self.progress = None
        # Every output pixel is a convex combination of in-range tile values; float32 rounding of the weights can
        # still put it a few ulp above 1 (or below 0). Clamping removes only that rounding, never a real excursion.
        return output.clamp_(0.0, 1.0)

    def options(self) -> dict[str, Any]:
        tiling = {
            "tile": self.tile,
            "overlap": self.overlap,
            "blend": self.blend,
            "tile_units": "output pixels",
            "tile_origin": [0, 0],
            "tile_stride": self.stride,
            "last_tile": "snapped to the far image edge",
        }
        if self.blend == "gaussian":
            tiling["gaussian_variance"] = GAUSSIAN_VARIANCE
        return {**self.inner.options(), **tiling}

    def periods(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys((*self.inner.periods(), self.stride)))
