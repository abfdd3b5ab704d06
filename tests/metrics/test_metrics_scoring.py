"""create_metrics / score_images / score_files / metric_record, and the registry contract for every metric."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage import data as photos

from op4ksr_bench.errors import ImageError, UsageError, WeightsMissingError
from op4ksr_bench.imageio import write_png
from op4ksr_bench.metrics import METRICS
from op4ksr_bench.metrics.scoring import NATIVE_METRICS, create_metrics, metric_record, score_files, score_images

ALL_METRICS = METRICS.names()
"""Every registered metric: the contract tests below check a new registration without being edited."""
OWN_FACTS = ("name", "default", "display_order", "score_range")
"""Facts each registered class declares in its own body (inheriting them would copy a parent's membership)."""


@pytest.fixture(scope="module")
def pair():
    reference = photos.astronaut()[:256, :256]
    noise = np.random.default_rng(0).integers(-15, 16, reference.shape)
    return np.clip(reference.astype(np.int32) + noise, 0, 255).astype(np.uint8), reference


@pytest.mark.parametrize("name", ALL_METRICS)
def test_every_registered_metric_declares_its_facts(name):
    from op4ksr_bench import weights

    metric_class = METRICS.get(name)
    assert metric_class.name == name
    assert [fact for fact in OWN_FACTS if fact not in vars(metric_class)] == []
    assert metric_class.kind in ("FR", "NR")
    assert isinstance(metric_class.higher_is_better, bool) and isinstance(metric_class.default, bool)
    low, high = metric_class.score_range
    assert isinstance(low, float) and isinstance(high, float) and low < high
    assert metric_class.ideal is None or low < metric_class.ideal < high
    order = metric_class.display_order
    assert order is None or (isinstance(order, int) and order >= 1)
    assert metric_class.backend == "native" or "==" in metric_class.backend
    assert metric_class.licence
    if metric_class.backend.startswith("pyiqa"):
        assert metric_class.non_commercial
    assert all(file in weights.CATALOGUE for file in metric_class.weights)
    assert metric_class.is_native() == (metric_class.backend == "native" and not metric_class.weights)


def test_display_orders_are_distinct():
    orders = [METRICS.get(name).display_order for name in ALL_METRICS if METRICS.get(name).display_order is not None]
    assert len(orders) == len(set(orders))


@pytest.mark.parametrize("name", ALL_METRICS)
def test_every_registered_metric_scores_within_its_range_or_names_its_missing_weights(name, pair):
    """Native metrics score a real pair (and give None for FR without a reference); metrics with weight files,
    which the tests' empty weights folders lack, fail with one line naming the file and skip as a default."""
    metric_class = METRICS.get(name)
    pred, ref = pair
    if metric_class.weights:
        with pytest.raises(WeightsMissingError, match=name) as caught:
            create_metrics([name])
        assert "\n" not in str(caught.value)
        assert create_metrics(None, default_names=[name]) == (
            [],
            [f"skipping {name}: {str(caught.value)[len(name) + 2 :]}"],
        )
        return
    (metric,), warnings = create_metrics([name], tile_stride=48)
    assert warnings == []
    values = score_images([metric], pred, ref)
    low, high = metric_class.score_range
    assert isinstance(values[name], float) and low <= values[name] <= high
    without_reference = score_images([metric], pred, None)
    assert (without_reference[name] is None) == (metric_class.kind == "FR")


def test_registry_lists_names_without_importing_torch_backends():
    import subprocess
    import sys

    code = "import sys; from op4ksr_bench.metrics import METRICS; METRICS.names(); print('pyiqa' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_native_metrics_score_a_pair_and_record_their_settings(pair):
    pred, ref = pair
    metrics, warnings = create_metrics(list(NATIVE_METRICS), crop_border=4, tile_stride=48)
    assert warnings == []
    values = score_images(metrics, pred, ref)
    for name in NATIVE_METRICS:
        assert isinstance(values[name], float) and np.isfinite(values[name]), name
    assert values["pas.p48"] is not None and "seam.s16" not in values  # the stride replaces the default strides
    records = [metric_record(metric) for metric in metrics]
    json.dumps(records)
    psnr_record = records[0]
    assert psnr_record["settings"]["crop_border"] == 4 and psnr_record["higher_is_better"] is True


def test_fr_metrics_give_none_without_reference_and_refuse_other_sizes(pair):
    pred, ref = pair
    metrics, _ = create_metrics(["psnr", "pas"])
    values = score_images(metrics, pred, None)
    assert values["psnr"] is None and values["pas"] is not None
    with pytest.raises(ImageError, match="nothing is resized"):
        score_images(metrics, pred, ref[:200])


def test_score_files_is_score_images_on_decoded_files(tmp_path, pair):
    pred, ref = pair
    write_png(tmp_path / "a.png", pred)
    write_png(tmp_path / "b.png", ref)
    metrics, _ = create_metrics(["psnr", "ssim", "dpas"])
    assert score_files(metrics, tmp_path / "a.png", tmp_path / "b.png") == score_images(metrics, pred, ref)


def test_defaults_skip_metrics_without_weights_but_explicit_names_fail():
    metrics, warnings = create_metrics(None, default_names=["psnr", "niqe"])
    assert [metric.name for metric in metrics] == ["psnr"]
    assert len(warnings) == 1 and "niqe" in warnings[0] and "niqe_modelparameters.mat" in warnings[0]
    with pytest.raises(WeightsMissingError, match="niqe_modelparameters.mat"):
        create_metrics(["psnr", "niqe"])
    with pytest.raises(UsageError, match="Did you mean"):
        create_metrics(["psnrr"])
    with pytest.raises(UsageError, match="repeats"):
        create_metrics(["psnr", "psnr"])


def test_pas_and_dpas_share_the_prediction_report(pair):
    pred, ref = pair
    metrics, _ = create_metrics(["pas", "dpas"])
    values = score_images(metrics, pred, ref)
    alone = score_images(create_metrics(["pas"])[0], pred.copy(), None)
    assert values["pas"] == alone["pas"]
    assert values["dpas"] == pytest.approx(values["pas"] - score_images(metrics[:1], ref, None)["pas"])


def test_dpas_does_not_blame_a_texture_the_reference_has():
    brick = np.repeat(photos.brick()[:256, :256, None], 3, axis=2)
    metrics, _ = create_metrics(["pas", "dpas"])
    values = score_images(metrics, brick, brick.copy())
    assert values["pas"] > 0.05  # bricks are periodic
    assert values["dpas"] == pytest.approx(0.0, abs=1e-9)


def test_seam_detects_tile_boundaries():
    image = photos.coffee()[:384, :384].copy()
    clean = create_metrics(["seam"], tile_stride=64)[0][0](image)["seam"]
    offsets = np.random.default_rng(1).integers(-12, 13, (6, 6)).repeat(64, axis=0).repeat(64, axis=1)
    seamed = np.clip(image.astype(np.int32) + offsets[:, :, None], 0, 255).astype(np.uint8)  # per-tile shifts
    assert abs(clean) < 0.2
    assert create_metrics(["seam"], tile_stride=64)[0][0](seamed)["seam"] > clean + 0.3
