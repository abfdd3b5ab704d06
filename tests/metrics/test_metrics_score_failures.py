"""``op4ksr-bench score`` never loses work: bad or unpaired images become per-image failures, the rest is scored."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image
from skimage import data as photos
from typer.testing import CliRunner

from op4ksr_bench.cli import app
from op4ksr_bench.imageio import write_png
from op4ksr_bench.stats import bootstrap_ci


def run(*arguments: str):
    return CliRunner().invoke(app, list(arguments))


@pytest.fixture
def mixed(tmp_path):
    """Five good pairs, one transparent RGBA prediction, one prediction without a reference."""
    reference = photos.astronaut()[:96, :128]
    pred_dir, ref_dir = tmp_path / "pred", tmp_path / "ref"
    for index in range(5):
        noise = np.random.default_rng(index).integers(-12, 13, reference.shape)
        write_png(pred_dir / f"img{index}.png", np.clip(reference + noise, 0, 255).astype(np.uint8))
        write_png(ref_dir / f"img{index}.png", reference)
    rgba = np.dstack([reference, np.full(reference.shape[:2], 128, np.uint8)])
    pred_dir.mkdir(exist_ok=True)
    Image.fromarray(rgba, "RGBA").save(pred_dir / "rgba.png")
    write_png(ref_dir / "rgba.png", reference)
    write_png(pred_dir / "lonely.png", reference)
    return pred_dir, ref_dir


def test_failures_are_recorded_and_good_images_scored(mixed):
    pred_dir, ref_dir = mixed
    result = run("score", "--pred", str(pred_dir), "--ref", str(ref_dir), "--metrics", "psnr,pas", "--format", "json")
    assert result.exit_code == 1
    failed_lines = [line for line in result.stderr.splitlines() if line.startswith("failed ")]
    assert len(failed_lines) == 2
    assert any(line.startswith("failed lonely: no reference with the same stem") for line in failed_lines)
    assert any(line.startswith("failed rgba: ") and "transparen" in line for line in failed_lines)
    document = json.loads(result.stdout)
    assert document["scored"] == 5 and [f["id"] for f in document["failed"]] == ["lonely", "rgba"]
    rows = {row["id"]: row for row in document["per_image"]}
    assert rows["rgba"]["status"] == "failed" and "psnr" not in rows["rgba"]
    values = [rows[f"img{index}"]["psnr"] for index in range(5)]
    assert document["count"]["psnr"] == 5
    assert document["mean"]["psnr"] == pytest.approx(np.mean(values))
    assert document["ci95"]["psnr"] == bootstrap_ci(values)
    assert document["mode"]["pas.period"][1] >= 1 and "pas.period" not in document["mean"]


def test_csv_carries_status_reason_count_and_interval(mixed):
    pred_dir, ref_dir = mixed
    result = run("score", "--pred", str(pred_dir), "--ref", str(ref_dir), "--metrics", "psnr", "--format", "csv")
    assert result.exit_code == 1
    table = list(csv.reader(io.StringIO(result.stdout)))
    assert table[0] == ["id", "psnr", "status", "reason"]
    by_id = {row[0]: row for row in table[1:]}
    assert by_id["rgba"][2] == "failed" and by_id["rgba"][1] == "" and by_id["rgba"][3]
    assert by_id["img0"][2] == "ok" and float(by_id["img0"][1]) > 20
    assert by_id["count"][1] == "5"
    low, high = float(by_id["ci95_low"][1]), float(by_id["ci95_high"][1])
    assert low <= float(by_id["mean"][1]) <= high


def test_table_lists_failures_and_all_good_exits_zero(mixed):
    pred_dir, ref_dir = mixed
    result = run("score", "--pred", str(pred_dir), "--ref", str(ref_dir), "--metrics", "psnr")
    assert result.exit_code == 1
    assert "2 failed (means are over the 5 scored images)" in result.stdout and "95% CI" in result.stdout
    (pred_dir / "rgba.png").unlink()
    (pred_dir / "lonely.png").unlink()
    result = run("score", "--pred", str(pred_dir), "--ref", str(ref_dir), "--metrics", "psnr")
    assert result.exit_code == 0 and "failed" not in result.stdout


def test_crop_border_is_a_declared_setting(mixed, tmp_path):
    pred_dir, ref_dir = mixed
    (pred_dir / "rgba.png").unlink()
    (pred_dir / "lonely.png").unlink()
    arguments = ("score", "--pred", str(pred_dir), "--ref", str(ref_dir), "--metrics", "psnr", "--format", "json")
    plain = json.loads(run(*arguments).stdout)
    cropped = json.loads(run(*arguments, "--crop-border", "8").stdout)
    assert cropped["settings"]["crop_border"] == 8 and plain["settings"]["crop_border"] == 0
    assert cropped["settings"]["metrics"][0]["settings"]["crop_border"] == 8
    assert cropped["mean"]["psnr"] != plain["mean"]["psnr"]
    result = run(*arguments, "--crop-border", "-1")
    assert result.exit_code != 0 and "--crop-border -1" in str(result.exception)
