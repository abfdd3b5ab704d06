"""Work shared between metrics (ImageMemo) and the fast 8-bit paths give the same values as the plain functions."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch
from skimage import data as photos

from op4ksr_bench.imageio import to_tensor
from op4ksr_bench.metrics import fidelity, periodicity
from op4ksr_bench.metrics.memo import ImageMemo
from op4ksr_bench.metrics.scoring import create_metrics, score_images


def test_memo_reuses_by_identity_and_notices_changes():
    memo, calls = ImageMemo(capacity=4), []
    image = np.zeros((64, 64, 3), dtype=np.uint8)

    def compute():
        calls.append(1)
        return float(image.sum())

    assert memo.get((image,), "sum", compute) == 0.0
    assert memo.get((image,), "sum", compute) == 0.0
    assert len(calls) == 1
    assert memo.get((image.copy(),), "sum", compute) == 0.0  # another object: computed again
    assert len(calls) == 2
    image[:] = 9  # in-place change: the sampled fingerprint differs
    assert memo.get((image,), "sum", compute) == 9.0 * image.size
    assert len(calls) == 3


def test_memo_drops_entries_of_collected_arrays():
    memo = ImageMemo(capacity=4)
    image = np.ones((32, 32), dtype=np.uint8)
    memo.get((image,), "key", lambda: 1)
    assert len(memo) == 1
    del image
    gc.collect()
    assert len(memo) == 0


def test_shared_fidelity_values_equal_the_plain_functions():
    ref = photos.astronaut()[:300, :310]
    pred = np.clip(ref.astype(np.int16) + np.random.default_rng(1).integers(-20, 21, ref.shape), 0, 255)
    pred = pred.astype(np.uint8)
    metrics, _ = create_metrics(["psnr-y", "ssim-y", "ssim", "ms-ssim"], crop_border=2)
    values = score_images(metrics, pred, ref)
    cut = (slice(2, -2), slice(2, -2))
    y_pred, y_ref = fidelity.rgb_to_y(pred[cut]), fidelity.rgb_to_y(ref[cut])
    assert values["psnr-y"] == fidelity.psnr(y_pred, y_ref)
    assert values["ssim-y"] == pytest.approx(fidelity.ssim(y_pred, y_ref), abs=1e-12)
    assert values["ssim"] == pytest.approx(fidelity.ssim(pred[cut], ref[cut]), abs=1e-12)
    assert values["ms-ssim"] == pytest.approx(fidelity.ms_ssim(pred[cut], ref[cut]), abs=1e-12)
    assert score_images(metrics, pred, ref) == values  # second call served from the memo, same numbers


def test_luminance_of_8_bit_arrays_matches_the_tensor_path():
    image = photos.coffee()
    fast = periodicity.luminance_rgb8(image)
    slow = periodicity.luminance(to_tensor(image))
    assert fast.shape == slow.shape and fast.dtype == torch.float32
    torch.testing.assert_close(fast, slow, atol=1e-6, rtol=0)


def test_float32_metric_path_matches_float64_pas():
    image = photos.astronaut()
    tile = np.random.default_rng(2).integers(-10, 11, (16, 16))
    image = np.clip(image.astype(np.int32) + np.tile(tile, (32, 32))[:, :, None], 0, 255).astype(np.uint8)
    fast = periodicity.pas_luminance(periodicity.luminance_rgb8(image))
    exact = periodicity.pas(to_tensor(image).double())
    assert fast.dominant_period == exact.dominant_period == 16
    for period, score in exact.per_period.items():
        assert fast.per_period[period] == pytest.approx(score, abs=1e-4)


def test_one_scoring_call_computes_each_pas_once_and_keeps_nothing_after(monkeypatch):
    from op4ksr_bench.metrics import memo

    calls = []
    original = periodicity.pas_luminance

    def counting(*arguments, **options):
        calls.append(1)
        return original(*arguments, **options)

    monkeypatch.setattr(periodicity, "pas_luminance", counting)
    ref = photos.astronaut()[:256, :256]
    pred = np.clip(ref.astype(np.int16) + 5, 0, 255).astype(np.uint8)
    metrics, _ = create_metrics(["pas", "dpas"])
    score_images(metrics, pred, ref)
    assert len(calls) == 2  # PAS(SR) shared by pas and dpas, PAS(HR) once
    score_images(metrics, pred, ref)
    assert len(calls) == 4  # a new call starts from an empty memo: nothing survives a scoring call
    assert len(memo.current()) == 0


def test_pas_keeps_its_grid_tables_for_its_lifetime_and_nowhere_else():
    rng = np.random.default_rng(3)
    first, second = (rng.integers(0, 256, (96, 128, 3), dtype=np.uint8) for _ in range(2))
    (metric,), _ = create_metrics(["pas"])
    score_images([metric], first, None)
    tables = len(metric._tables)
    assert tables >= 1  # the high-pass transfer (and row DFT) of this grid
    score_images([metric], second, None)
    assert len(metric._tables) == tables  # same size: reused
    score_images([metric], first[:80], None)
    assert len(metric._tables) > tables  # another grid: its own tables
    assert periodicity._TABLES.get() is None  # nothing left behind outside the metric's call
