"""Range and NaN failures name the offending values with every digit and where they are; blended tiles stay in range."""

from __future__ import annotations

import torch

from op4ksr_bench.methods.base import check_output, describe_bad_values
from op4ksr_bench.methods.interpolation import BicubicMethod
from op4ksr_bench.methods.tiling import TiledMethod, axis_weights


def test_range_failure_gives_values_and_positions():
    output = torch.full((1, 3, 8, 8), 0.5)
    output[0, 1, 2, 5] = 1.0000001  # float32: 1.00000011920928955078125
    output[0, 2, 7, 0] = -0.25
    message = check_output(output, (1, 3, 2, 2), 4)
    assert message == (
        "values outside [0, 1] (torch.float32): 1 below 0 (min -0.25 at channel 2, y 7, x 0), "
        "1 above 1 (max 1.0000001192092896 at channel 1, y 2, x 5) of 192 values"
    )


def test_nan_failure_gives_counts_and_first_position():
    output = torch.full((1, 3, 4, 4), 0.5)
    output[0, 0, 3, 1] = float("nan")
    output[0, 2, 0, 0] = float("inf")
    assert check_output(output, (1, 3, 1, 1), 4) == (
        "non-finite values: 1 NaN, 1 Inf of 48 values; first at channel 0, y 3, x 1 (nan)"
    )
    assert describe_bad_values(torch.full((1, 3, 2, 2), 0.5)) is None


def test_blend_of_saturated_tiles_overshoots_one_before_the_clamp():
    """The cause of the tiled OP4KSR failure "values outside [0, 1]: min 0, max 1" (printed with 6 digits):
    blending tiles that are 1.0 everywhere with float32 weights, as TiledMethod.upscale does, gives pixels of
    1 + 2**-23. The blend clamps that rounding away; the message now shows every digit."""
    height, width, tile, stride = 512, 640, 128, 96
    row_starts, row_weights = axis_weights(height, tile, stride, "gaussian")
    col_starts, col_weights = axis_weights(width, tile, stride, "gaussian")
    blended = torch.zeros((height, width))
    ones = torch.ones((tile, tile))
    for row_start, row_weight in zip(row_starts, row_weights, strict=True):
        weight_y = torch.tensor(row_weight, dtype=torch.float32)[:, None]
        for col_start, col_weight in zip(col_starts, col_weights, strict=True):
            weight_x = torch.tensor(col_weight, dtype=torch.float32)[None, :]
            blended[row_start : row_start + tile, col_start : col_start + tile].addcmul_(ones, weight_y * weight_x)
    assert float(blended.max()) == 1 + 2**-23
    message = check_output(blended[None, None].expand(1, 3, height, width), (1, 3, height // 4, width // 4), 4)
    assert message is not None and "max 1.0000001192092896 at channel 0, y " in message


def test_gaussian_tiles_of_a_saturated_image_stay_within_range():
    lr = torch.ones((1, 3, 96, 80))
    lr[..., 40:, :] = 0.0
    tiled = TiledMethod(BicubicMethod(scale=4), tile=128, overlap=32, blend="gaussian")
    output = tiled.upscale(lr)
    assert check_output(output, tuple(lr.shape), 4) is None
    assert float(output.max()) == 1.0 and float(output.min()) == 0.0
