"""The second-order degradation: exact sizes, determinism, recorded parameters, config validation, 4K scaling."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from op4ksr_bench.data.degradations import DegradationConfig, degrade
from op4ksr_bench.data.kernels import KERNEL_FAMILIES, build_kernel, sinc_kernel
from op4ksr_bench.errors import ImageError, UsageError
from op4ksr_bench.seeds import seed_for


@pytest.fixture
def hr(make_image):
    return make_image(192, 256, seed=3)


def test_same_seed_same_bytes_other_seed_other_bytes(hr):
    config = DegradationConfig.from_dict({"spatial_scale": 2.0})
    first, params = degrade(hr, 4, config, seed=1234)
    second, params_again = degrade(hr.copy(), 4, config, seed=1234)
    assert first.tobytes() == second.tobytes() and params == params_again
    other, _ = degrade(hr, 4, config, seed=1235)
    assert other.tobytes() != first.tobytes()
    assert np.array_equal(hr, hr.copy())  # the input is not modified


@pytest.mark.parametrize("shape,scale", [((64, 96), 4), ((256, 256), 4), ((48, 72), 2), ((30, 45), 3), ((16, 16), 1)])
def test_lr_is_exactly_hr_over_scale(shape, scale):
    image = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    for seed in range(4):
        lr, _ = degrade(image, scale, DegradationConfig(), seed)
        assert lr.shape == (shape[0] // scale, shape[1] // scale, 3) and lr.dtype == np.uint8


def test_bad_input_gives_one_line():
    with pytest.raises(ImageError, match="not divisible by scale 4"):
        degrade(np.zeros((30, 32, 3), np.uint8), 4, DegradationConfig(), 0)
    with pytest.raises(ImageError, match="uint8 HxWx3"):
        degrade(np.zeros((32, 32), np.uint8), 4, DegradationConfig(), 0)


def test_parameters_are_recorded_and_json_serialisable(hr):
    seen_orders, seen_noise = set(), set()
    for seed in range(12):
        _, params = degrade(hr, 4, DegradationConfig.from_dict({"spatial_scale": 2.0}), seed)
        assert json.loads(json.dumps(params)) == params
        assert params["seed"] == seed and params["scale"] == 4 and params["spatial_scale"] == 2.0
        for stage in ("first", "second"):
            assert set(params[stage]) == {"blur", "resize", "noise", "jpeg_quality"}
            assert 30 <= params[stage]["jpeg_quality"] <= 95
            seen_noise.add(params[stage]["noise"]["type"])
        blur = params["first"]["blur"]
        assert blur["family"] in (*KERNEL_FAMILIES, "sinc") and blur["size"] >= 15 and blur["size"] % 2 == 1
        seen_orders.add(params["final"]["order"])
    assert seen_orders == {"resize_sinc_jpeg", "jpeg_resize_sinc"} and seen_noise == {"gaussian", "poisson"}


def test_spatial_scale_scales_kernel_sizes_and_sigmas(hr):
    plain = degrade(hr, 4, DegradationConfig(), 7)[1]["first"]["blur"]
    scaled = degrade(hr, 4, DegradationConfig.from_dict({"spatial_scale": 2.0}), 7)[1]["first"]["blur"]
    assert scaled["family"] == plain["family"]
    assert scaled["size"] == 2 * (plain["size"] * 2 // 2) + 1
    if "sigma_x" in plain:
        assert scaled["sigma_x"] == pytest.approx(2 * plain["sigma_x"])
    else:
        assert scaled["cutoff"] == pytest.approx(plain["cutoff"] / 2)


def test_config_round_trip_and_validation():
    config = DegradationConfig.from_dict({"spatial_scale": 2, "second": {"blur_prob": 0.5}})
    assert DegradationConfig.from_dict(config.to_dict()) == config
    assert config.second.blur_prob == 0.5 and config.first.blur.sigma_range == (0.2, 3.0)
    with pytest.raises(UsageError, match=r"unknown keys \['blurr'\]"):
        DegradationConfig.from_dict({"first": {"blurr": {}}})
    with pytest.raises(UsageError, match="family_probs"):
        DegradationConfig.from_dict({"first": {"blur": {"family_probs": [1.0]}}})
    with pytest.raises(UsageError, match="jpeg_range"):
        DegradationConfig.from_dict({"final": {"jpeg_range": [0, 120]}})
    with pytest.raises(UsageError, match="odd"):
        DegradationConfig.from_dict({"first": {"blur": {"kernel_size_range": [6, 20]}}})
    with pytest.raises(UsageError, match="resize_modes"):
        DegradationConfig.from_dict({"final": {"resize_modes": ["nearest"]}})


def test_suite_configs_parse():
    from op4ksr_bench.data.suites import load_suite_spec

    for name in ("4ksr-syn", "train"):
        config = DegradationConfig.from_dict(load_suite_spec(name).degradation)
        assert config.spatial_scale == 2.0


def test_kernels_are_normalised_and_shaped():
    for family in KERNEL_FAMILIES:
        kernel = build_kernel(family, 21, 2.0, 1.0, 0.5, 1.5)
        assert kernel.shape == (21, 21) and kernel.sum() == pytest.approx(1.0, abs=1e-5)
        assert kernel[10, 10] == kernel.max()
    iso = build_kernel("iso", 21, 2.0, 5.0, 1.0, 1.0)
    assert np.allclose(iso, iso.T, atol=1e-7)
    sinc = sinc_kernel(21, np.pi / 3)
    assert sinc.sum() == pytest.approx(1.0, abs=1e-5) and sinc.min() < 0  # ringing lobes
    with pytest.raises(ValueError, match="unknown kernel family"):
        build_kernel("box", 5, 1, 1, 0, 1)


def test_seed_for_is_stable_and_spreads():
    assert seed_for(1, "a") == seed_for(1, "a")
    assert len({seed_for(1, f"img{i}") for i in range(100)}) == 100
    assert seed_for(1, "a") != seed_for(2, "a")
    digest = hashlib.sha256(b"4001:enl-bamboo").digest()
    assert seed_for(4001, "enl-bamboo") == int.from_bytes(digest[:8], "big") >> 1


def test_benchmark_degradation_uhd(benchmark):
    """One 3840x2160 image through the full pipeline with the suites' 4K scaling."""
    image = np.random.default_rng(1).integers(0, 256, (2160, 3840, 3), dtype=np.uint8)
    config = DegradationConfig.from_dict({"spatial_scale": 2.0})
    lr, _ = benchmark(degrade, image, 4, config, 11)
    assert lr.shape == (540, 960, 3)
