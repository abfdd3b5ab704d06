"""Every curation filter on generated images with a known answer, plus the partition's exclusivity guarantees."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from op4ksr_bench.data.curation import (
    CurationConfig,
    estimate_jpeg_quality,
    hamming,
    high_frequency_ratio,
    luminance,
    measure,
    noise_sigma,
    nr_iqa_scores,
    perceptual_hash,
    photo_rejection,
    select_crop,
    select_tiles,
)
from op4ksr_bench.errors import UsageError


def _jpeg_bytes(image: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


@pytest.mark.parametrize("quality", [30, 50, 75, 90, 97])
def test_jpeg_quality_is_read_from_the_quantisation_tables(make_image, tmp_path, quality):
    data = _jpeg_bytes(make_image(64, 64, seed=1), quality)
    assert estimate_jpeg_quality(data) == quality
    path = tmp_path / "q.jpg"
    path.write_bytes(data)
    assert estimate_jpeg_quality(path) == quality


def test_jpeg_quality_is_none_for_lossless(make_image):
    buffer = io.BytesIO()
    Image.fromarray(make_image(32, 32, seed=1)).save(buffer, format="PNG")
    assert estimate_jpeg_quality(buffer.getvalue()) is None


def test_fake_4k_has_little_energy_near_nyquist(make_image):
    real = make_image(512, 512, seed=2)
    small = cv2.resize(real, (256, 256), interpolation=cv2.INTER_AREA)
    fake = cv2.resize(small, (512, 512), interpolation=cv2.INTER_CUBIC)
    real_ratio = high_frequency_ratio(luminance(real))
    fake_ratio = high_frequency_ratio(luminance(fake))
    assert fake_ratio < real_ratio / 5
    config = CurationConfig(min_long_side=256, min_short_side=256, min_hf_ratio=(real_ratio + fake_ratio) / 2)
    assert photo_rejection(measure(real, None), config) is None
    assert photo_rejection(measure(fake, None), config).startswith("fake-4k:")


def test_sharpness_and_noise_estimates(make_image):
    image = make_image(256, 256, seed=4)
    blurred = cv2.GaussianBlur(image, (0, 0), 2.0)
    assert measure(blurred, None).sharpness < measure(image, None).sharpness / 4
    flat = np.full((256, 256), 128.0, np.float32)
    noisy = flat + np.random.default_rng(0).normal(0, 5.0, flat.shape).astype(np.float32)
    assert noise_sigma(noisy) == pytest.approx(5.0, rel=0.1)
    assert noise_sigma(flat) == pytest.approx(0.0, abs=1e-6)


def test_each_threshold_gives_its_reason(make_image):
    measurement = measure(make_image(256, 320, seed=5), jpeg_quality=60)
    base = {"min_long_side": 256, "min_short_side": 256}
    cases = {
        "resolution": {"min_long_side": 400},
        "aspect": {"max_aspect": 1.1},
        "jpeg": {"min_jpeg_quality": 80},
        "sharpness": {"min_sharpness": 1e9},
        "noise": {"max_noise_sigma": 0.0},
        "nr-iqa": {"nr_iqa": {"metric": "musiq", "min": 50}},
    }
    measurement.nr_iqa["musiq"] = 20.0
    for prefix, change in cases.items():
        reason = photo_rejection(measurement, CurationConfig(**{**base, **change}))
        assert reason and reason.startswith(prefix), (prefix, reason)
    assert photo_rejection(measurement, CurationConfig(**base)) is None
    assert photo_rejection(measurement, CurationConfig(**base, max_long_side=300)).startswith("resolution")
    with pytest.raises(UsageError, match="unknown keys"):
        CurationConfig.from_dict({"min_sharpnes": 3})


def test_content_aware_crops_skip_flat_regions(make_image):
    image = make_image(512, 512, seed=6, flat_top=0.5)  # top half is flat "sky"
    measurement = measure(image, None)
    choice = select_crop(measurement, 256, 256, max_flat_fraction=0.2)
    assert choice is not None and choice.y >= 256 and choice.flat_fraction <= 0.2
    assert select_crop(measurement, 512, 512, max_flat_fraction=0.2) is None
    tiles = select_tiles(measurement, 128, max_count=20, max_flat_fraction=0.2, max_overlap=0.0)
    assert 3 <= len(tiles) <= 8 and all(tile.flat_fraction <= 0.2 and tile.y + tile.h > 256 for tile in tiles)
    for index, tile in enumerate(tiles):  # greedy by detail, never overlapping (max_overlap 0)
        for other in tiles[index + 1 :]:
            assert (
                tile.x + 128 <= other.x or other.x + 128 <= tile.x or tile.y + 128 <= other.y or other.y + 128 <= tile.y
            )
        assert index == 0 or tile.detail <= tiles[index - 1].detail
    with pytest.raises(UsageError, match="multiples of 16"):
        select_crop(measurement, 100, 100, 0.5)


def test_perceptual_hash_finds_near_duplicates(make_image):
    image = make_image(300, 400, seed=7)
    recompressed = np.asarray(Image.open(io.BytesIO(_jpeg_bytes(image, 60))))
    resized = cv2.resize(image, (200, 150), interpolation=cv2.INTER_AREA)
    other = make_image(300, 400, seed=8)
    reference = perceptual_hash(image)
    assert hamming(reference, perceptual_hash(recompressed)) <= 4
    assert hamming(reference, perceptual_hash(resized)) <= 4
    assert hamming(reference, perceptual_hash(other)) > 12


def test_nr_iqa_hook_reports_why_it_was_skipped(make_image):
    scores, reason = nr_iqa_scores({"a": make_image(64, 64, seed=9)}, "no-such-metric")
    assert scores == {} and reason and reason.startswith("NR-IQA filter skipped")


def test_partition_keeps_photographs_exclusive_and_drops_duplicates(make_image, tmp_path):
    from op4ksr_bench.data.partition import partition
    from op4ksr_bench.data.sources import SourceImage
    from op4ksr_bench.data.suites import SuiteSpec

    photos, cache = [], {}
    for index in range(6):
        image = make_image(256, 256, seed=20 + (index % 5))  # photo 5 duplicates photo 0
        photo = SourceImage(f"p{index}", "test", f"p{index}.png", "CC0-1.0", "", str(tmp_path / f"p{index}"), 256, 256)
        photos.append(photo)
        cache[photo.id] = measure(image, None)
    common = {"version": 1, "scale": 4, "metrics": ["psnr"], "seed": 1, "curation": {"min_long_side": 128,
              "min_short_side": 128, "max_flat_fraction": 0.9}}  # fmt: skip
    first = SuiteSpec.from_mapping({**common, "name": "a", "task": "real", "count": 2, "lr_size": [128, 128],
                                    "crop": {"mode": "fixed"}, "source": {"priority": 1}}, "a")  # fmt: skip
    second = SuiteSpec.from_mapping({**common, "name": "b", "task": "train", "crop": {"mode": "tiles", "size": 128,
                                     "max_per_image": 1}, "source": {"priority": 2}}, "b")  # fmt: skip
    plans = partition([second, first], photos, lambda photo: cache[photo.id], pool_seed=3)
    used_a = {item.photo.id for item in plans["a"].items}
    used_b = {item.photo.id for item in plans["b"].items}
    assert len(used_a) == 2 and not used_a & used_b
    assert len(used_a | used_b) == 5  # one of p0 / p5 is dropped as a near-duplicate
    reasons = [record["reason"] for plan in plans.values() for record in plan.rejected]
    assert any(reason.startswith("near-duplicate") for reason in reasons)


def test_benchmark_curation_measure(benchmark, make_image):
    """All measurements of one 2048x1152 photograph (pHash, maps, spectrum, noise)."""
    image = np.tile(make_image(576, 1024, seed=10), (2, 2, 1))
    result = benchmark(measure, image, 95)
    assert result.width == 2048 and result.height == 1152
