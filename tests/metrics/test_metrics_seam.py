"""The seam score on real interpolation outputs (no seams: about 0) and on real naive tiles (seams: clearly above).

Low-resolution inputs are real photographs reduced with OpenCV's area filter; outputs come from the benchmark's
own methods, untiled and through the tiling engine with non-overlapping tiles and no blending.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from skimage import data as photos

from op4ksr_bench.imageio import to_tensor
from op4ksr_bench.methods.factory import create_method
from op4ksr_bench.metrics.artifacts import SEAM_NO_EFFECT, Seam
from op4ksr_bench.metrics.scoring import create_metrics, metric_record


def upscale(name: str, scale: int, lr: np.ndarray, **options) -> np.ndarray:
    method = create_method(name, scale=scale, options=options or None)
    with torch.inference_mode():
        output = method.upscale(to_tensor(lr))
    return (output[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)


def reduce(photo: np.ndarray, scale: int) -> np.ndarray:
    height, width = photo.shape[0] // (8 * scale) * 8, photo.shape[1] // (8 * scale) * 8
    return cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("method", ["bicubic", "lanczos"])
def test_interpolation_has_no_seam_and_naive_tiles_do(method, scale):
    # small photographs have few boundary lines, so the level of no seam is looser than at 4K (next test)
    for photo in (photos.astronaut(), photos.coffee(), photos.chelsea()):
        lr = reduce(photo, scale)
        untiled = upscale(method, scale, lr)
        values = Seam()(untiled)
        assert all(abs(values[f"seam.s{stride}"]) <= 0.15 for stride in (16, 32, 64)), values
        stride = 24 * scale
        tiled = upscale(method, scale, lr, tile=stride, overlap=0, blend="none")
        seamed, clean = Seam(stride)(tiled)["seam"], Seam(stride)(untiled)["seam"]
        assert seamed > 0.5 and seamed > clean + 0.4


@pytest.mark.slow
def test_4k_interpolation_scores_within_005_and_naive_tiles_far_above(load_debian_photos):
    (photo,) = load_debian_photos(("lomiri-wallpapers-16.04", "Dragonfly_by_Bolly.jpg"))
    for scale in (2, 3, 4):
        lr = reduce(photo, scale)
        for method in ("bicubic", "lanczos"):
            untiled = upscale(method, scale, lr)
            assert abs(Seam()(untiled)["seam"]) <= 0.05  # measured: 0.005 to 0.008
            assert abs(Seam(24 * scale)(untiled)["seam"]) <= 0.05  # measured: within 0.006
            # 256-512 px strides leave 13-25 boundary lines, so the level of no seam is known to about 0.1 there
            assert abs(Seam(128 * scale)(untiled)["seam"]) <= 0.15  # measured: -0.11 to -0.03
        tiled = upscale("bicubic", scale, lr, tile=128 * scale, overlap=0, blend="none")
        assert Seam(128 * scale)(tiled)["seam"] > 0.4  # measured: 0.52 (x2), 1.21 (x3), 1.46 (x4)


@pytest.mark.slow
def test_untiled_learned_sr_scores_near_zero_and_its_naive_tiles_do_not(load_debian_photos):
    from op4ksr_bench.weights import commands as weight_commands

    weight_commands.cli_fetch(["realesrgan-x4plus"])
    (photo,) = load_debian_photos(("lomiri-wallpapers-16.04", "Dragonfly_by_Bolly.jpg"))
    lr = cv2.resize(photo, (352, 264), interpolation=cv2.INTER_AREA)
    untiled = upscale("realesrgan-x4plus", 4, lr)  # 1408x1056
    assert abs(Seam()(untiled)["seam"]) <= 0.05  # measured: 0.007 (s32), -0.006 (s16), 0.001 (s64)
    assert abs(Seam(128)(untiled)["seam"]) <= 0.15  # 18 lines only at 128 px: measured -0.087
    tiled = upscale("realesrgan-x4plus", 4, lr, tile=128, overlap=0, blend="none")
    assert Seam(128)(tiled)["seam"] > 0.3


def test_seam_is_scored_at_the_declared_stride_only():
    image = upscale("bicubic", 4, reduce(photos.astronaut(), 4))
    values = create_metrics(["seam"], tile_stride=96)[0][0](image)
    assert set(values) == {"seam"}
    assert values["seam"] == Seam(96)(image)["seam"]


def test_negative_values_mean_smoothed_boundaries_and_are_not_best():
    image = upscale("bicubic", 4, reduce(photos.astronaut(), 4)).astype(np.float64)
    smoothed = image.copy()
    for x in range(64, image.shape[1], 64):  # average across every boundary: less edge energy there
        smoothed[:, x - 1 : x + 1] = image[:, x - 1 : x + 1].mean(axis=1, keepdims=True)
    for y in range(64, image.shape[0], 64):
        smoothed[y - 1 : y + 1] = smoothed[y - 1 : y + 1].mean(axis=0, keepdims=True)
    value = Seam(64)(np.round(smoothed).astype(np.uint8))["seam"]
    assert value < -0.3
    metric = create_metrics(["seam"])[0][0]
    record = metric_record(metric)
    assert record["ideal"] == SEAM_NO_EFFECT == 0.0 and not record["higher_is_better"]
    assert "ideal" not in metric_record(create_metrics(["psnr"])[0][0])


def test_strides_without_a_control_line_are_refused():
    from op4ksr_bench.errors import ImageError, UsageError

    with pytest.raises(UsageError, match="divide 12"):
        Seam(12)

    with pytest.raises(ImageError, match="no tile boundary"):
        Seam(64)(np.zeros((40, 40, 3), dtype=np.uint8))


def test_the_runner_scores_seams_at_the_tiling_stride_only():
    from op4ksr_bench.metrics.scoring import declared_tile_stride

    assert declared_tile_stride(create_method("bicubic", scale=4)) is None  # patch-free: default strides
    tiled = create_method("bicubic", scale=4, options={"tile": 512, "overlap": 64, "blend": "linear"})
    assert declared_tile_stride(tiled) == 448
