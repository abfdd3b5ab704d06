"""``op4ksr-bench ls metrics`` and ``op4ksr-bench score`` through the real CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage import data as photos
from typer.testing import CliRunner

from op4ksr_bench.cli import app
from op4ksr_bench.imageio import write_png


def run(*arguments: str):
    return CliRunner().invoke(app, list(arguments))


@pytest.fixture
def folders(tmp_path):
    reference = photos.astronaut()[:200, :240]
    pred_dir, ref_dir = tmp_path / "pred", tmp_path / "ref"
    for index in range(3):
        noise = np.random.default_rng(index).integers(-10, 11, reference.shape)
        write_png(pred_dir / f"img{index}.png", np.clip(reference + noise, 0, 255).astype(np.uint8))
        write_png(ref_dir / f"img{index}.png", reference)
    return pred_dir, ref_dir


def test_ls_metrics_lists_every_metric_with_direction_policy_and_weights():
    result = run("ls", "metrics")
    assert result.exit_code == 0, result.output
    for text in ("psnr", "maniqa", "tiled-mean 512px", "non-commercial", "MISSING niqe-pris-params", "lower"):
        assert text in result.output
    assert "psnr *" in result.output and "ms-ssim *" not in result.output  # the default metrics are marked
    assert "[-1, 1]" in result.output and "[0, inf]" in result.output


def test_score_json_has_per_image_mean_and_settings(folders):
    pred_dir, ref_dir = folders
    result = run(
        "score", "--pred", str(pred_dir), "--ref", str(ref_dir), "--metrics", "psnr,ssim,pas", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [row["id"] for row in document["per_image"]] == ["img0", "img1", "img2"]
    assert set(document) >= {"per_image", "mean", "settings"}
    values = [row["psnr"] for row in document["per_image"]]
    assert document["mean"]["psnr"] == pytest.approx(np.mean(values))
    assert document["median"]["psnr"] == pytest.approx(np.median(values))
    assert [record["name"] for record in document["settings"]["metrics"]] == ["psnr", "ssim", "pas"]


def test_score_caches_per_image_values_and_recomputes_only_changes(folders, tmp_path):
    pred_dir, ref_dir = folders
    arguments = ("score", "--pred", str(pred_dir), "--ref", str(ref_dir), "--metrics", "psnr", "--format", "csv")
    first = run(*arguments)
    assert first.exit_code == 0 and "(cached)" not in first.stderr
    write_png(pred_dir / "img1.png", np.zeros((200, 240, 3), dtype=np.uint8))
    second = run(*arguments)
    assert second.stderr.count("(cached)") == 2 and "img1 (cached)" not in second.stderr
    assert second.stdout.splitlines()[0] == "id,psnr,status,reason" and second.stdout.splitlines()[-2].startswith(
        "mean,"
    )
    out = tmp_path / "scores.csv"
    third = run(*arguments, "--out", str(out))
    assert third.exit_code == 0 and out.read_text() == second.stdout


def test_score_fails_mismatched_sizes_and_unpaired_files_per_image(folders):
    pred_dir, ref_dir = folders
    write_png(pred_dir / "img0.png", np.zeros((100, 100, 3), dtype=np.uint8))
    result = run("score", "--pred", str(pred_dir), "--ref", str(ref_dir), "--metrics", "psnr")
    assert result.exit_code == 1 and "failed img0:" in result.stderr and "nothing is resized" in result.stderr
    write_png(pred_dir / "extra.png", np.zeros((100, 100, 3), dtype=np.uint8))
    result = run("score", "--pred", str(pred_dir), "--ref", str(ref_dir), "--metrics", "psnr")
    assert result.exit_code == 1 and "failed extra: no reference with the same stem" in result.stderr


def test_score_without_reference_uses_nr_defaults_and_warns_about_missing_weights(folders):
    pred_dir, _ = folders
    result = run("score", "--pred", str(pred_dir))
    assert result.exit_code == 0, result.output
    assert "skipping niqe" in result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header == ["id", "pas", "seam"]


def test_score_explicit_metric_without_weights_fails_with_one_line(folders):
    pred_dir, _ = folders
    result = run("score", "--pred", str(pred_dir), "--metrics", "musiq")
    assert result.exit_code != 0 and "musiq_koniq_ckpt-e95806b9.pth" in str(result.exception)


@pytest.mark.slow
def test_score_works_on_4k_pngs(tmp_path):
    rng = np.random.default_rng(0)
    base = np.repeat(np.repeat(photos.astronaut(), 8, axis=0), 8, axis=1)
    pred = np.clip(base.astype(np.int16) + rng.integers(-4, 5, base.shape, dtype=np.int16), 0, 255).astype(np.uint8)
    write_png(tmp_path / "pred" / "a.png", pred)
    write_png(tmp_path / "ref" / "a.png", base)
    result = run(
        "score", "--pred", str(tmp_path / "pred"), "--ref", str(tmp_path / "ref"), "--metrics", "psnr,pas,seam",
        "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["per_image"][0]
    assert row["psnr"] > 40 and row["pas"] > 0  # pixel-replicated upscale: a period-8 pattern
