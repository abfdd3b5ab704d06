"""The tiling engine: weights sum to one, constant images stay constant, exact tiles, recorded geometry."""

from __future__ import annotations

import itertools

import pytest
import torch

from op4ksr_bench.errors import UsageError
from op4ksr_bench.methods.base import Method, MethodCard
from op4ksr_bench.methods.interpolation import BicubicMethod
from op4ksr_bench.methods.tiling import BLENDS, TiledMethod, axis_weights
from op4ksr_bench.tilegrid import tile_starts


class Nearest(Method):
    """Nearest-neighbour x4 upscaling that records every input it was given."""

    card = MethodCard(name="nearest", display_name="nearest", paper="", licence="Apache-2.0", family="interpolation",
                      steps=0)  # fmt: skip

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls: list[tuple[int, ...]] = []

    def upscale(self, lr):
        self.calls.append(tuple(lr.shape))
        return lr.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)


@pytest.mark.parametrize("blend", BLENDS)
@pytest.mark.parametrize(
    ("length", "tile", "overlap"), [(100, 32, 8), (64, 32, 0), (97, 40, 20), (30, 64, 16), (128, 48, 40), (257, 64, 31)]
)
def test_axis_weights_sum_to_one(length, tile, overlap, blend):
    starts, weights = axis_weights(length, tile, tile - overlap, blend)
    total = [0.0] * length
    for start, profile in zip(starts, weights, strict=True):
        assert all(w >= 0 for w in profile)
        for offset, weight in enumerate(profile):
            total[start + offset] += weight
    assert max(abs(t - 1.0) for t in total) < 1e-12


def test_tile_starts_cover_the_image_and_snap_the_last_tile():
    assert tile_starts(100, 32, 24) == [0, 24, 48, 68]
    assert tile_starts(64, 32, 32) == [0, 32]
    assert tile_starts(20, 32, 24) == [0]
    assert tile_starts(1000, 512, 512) == [0, 488]  # the grid of the tiled metrics (stride = tile)
    assert tile_starts(1024, 512, 512) == [0, 512]
    assert tile_starts(300, 512, 512) == [0]


@pytest.mark.parametrize(("blend", "overlap"), itertools.product(BLENDS, [0, 8, 16]))
def test_constant_image_stays_constant(blend, overlap):
    method = TiledMethod(Nearest(scale=4), tile=32, overlap=overlap, blend=blend)
    out = method.upscale(torch.full((1, 3, 23, 17), 0.61))
    assert out.shape == (1, 3, 92, 68)
    assert (out - 0.61).abs().max() < 1e-6
    assert torch.equal(out.mul(255).round(), torch.full_like(out, 0.61).mul(255).round())


def test_tiles_are_exact_lr_crops_and_equal_the_untiled_result_for_a_local_method():
    inner = Nearest(scale=4)
    method = TiledMethod(inner, tile=32, overlap=16, blend="gaussian")
    image = torch.rand(1, 3, 19, 21, generator=torch.Generator().manual_seed(3))
    out = method.upscale(image)
    assert all(shape[2] <= 8 and shape[3] <= 8 for shape in inner.calls)
    assert torch.allclose(out, Nearest(scale=4).upscale(image), atol=1e-6)


def test_bicubic_tiled_differs_only_near_seams_and_records_geometry():
    image = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(4))
    plain = BicubicMethod(scale=4).upscale(image)
    tiled_method = TiledMethod(BicubicMethod(scale=4), tile=64, overlap=16, blend="linear")
    tiled = tiled_method.upscale(image)
    assert (tiled - plain).abs().max() < 0.2
    options = tiled_method.options()
    assert options["tile_stride"] == 48 and options["tile_origin"] == [0, 0] and options["blend"] == "linear"
    assert tiled_method.periods() == (48,)
    assert tiled_method.card.name == "bicubic+tile64-16-linear" and not tiled_method.card.patch_free


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tile": 30}, "multiple of the scale"),
        ({"tile": 32, "overlap": 32}, "smaller than tile"),
        ({"tile": 32, "blend": "cosine"}, "not one of"),
        ({"tile": -4}, "non-negative"),
        ({"tile": 0}, "at least"),
    ],
)
def test_bad_tiling_options(kwargs, message):
    with pytest.raises(UsageError, match=message):
        TiledMethod(Nearest(scale=4), **{"overlap": 0, **kwargs})


def test_wrong_tile_output_is_reported():
    class Broken(Nearest):
        def upscale(self, lr):
            return super().upscale(lr)[..., :-1]

    with pytest.raises(ValueError, match="for a tile"):
        TiledMethod(Broken(scale=4), tile=32).upscale(torch.rand(1, 3, 16, 16))


def test_blend_of_white_tiles_stays_within_range():
    """Float32 rounding of normalised weights must not push a convex blend of 1.0 values above 1."""
    import torch

    from op4ksr_bench.methods.base import check_output
    from op4ksr_bench.methods.factory import create_method

    method = create_method("bicubic", options={"tile": 96, "overlap": 40, "blend": "gaussian"})
    lr = torch.ones(1, 3, 70, 90)
    output = method.upscale(lr)
    assert check_output(output, tuple(lr.shape), 4) is None
    assert float(output.max()) <= 1.0 and float(output.min()) > 1.0 - 1e-6
