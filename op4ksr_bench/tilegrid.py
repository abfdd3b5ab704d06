"""The tile grid shared by tiled inference (:mod:`op4ksr_bench.methods.tiling`) and tiled metrics
(:mod:`op4ksr_bench.metrics.learned`): start offsets along one axis, the last tile snapped to the end."""

from __future__ import annotations


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets of the tiles covering ``[0, length)``: ``0, stride, ...``, the last snapped to the end.

    With ``stride == tile`` this is the grid of multiples of ``tile`` from the top-left, plus one tile aligned to
    the end where ``length`` is not a multiple; a ``length`` no larger than ``tile`` gives ``[0]``.

    Args:
        length: Image length along the axis (pixels).
        tile: Tile length (pixels); clipped to ``length``.
        stride: Distance between consecutive tile starts (pixels), ``>= 1``.
    """
    tile = min(tile, length)
    starts = [0]
    while starts[-1] + tile < length:
        starts.append(min(starts[-1] + stride, length - tile))
    return starts
