"""The colour-cast check: per-channel mean error against the HR, from arrays and from a benchmark run folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from op4ksr_bench.data.manifest import BuiltSuite
from op4ksr_bench.errors import UsageError
from op4ksr_bench.imageio import read_image, write_png
from reference_model.colour import channel_mean_error, main, run_colour_errors, summary


def test_a_blue_cast_shows_in_the_blue_channel_only():
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 200, size=(32, 48, 3)).astype(np.uint8)
    cast = hr.copy()
    cast[..., 2] += 40  # +40 levels of blue everywhere
    assert np.allclose(channel_mean_error(cast, hr), [0.0, 0.0, 40.0])
    assert np.allclose(channel_mean_error(hr, hr), 0.0)
    border = hr.copy()
    border[:2] = 255  # a change inside the crop border does not count
    assert np.allclose(channel_mean_error(border, hr, crop_border=2), 0.0)
    assert not np.allclose(channel_mean_error(border, hr), 0.0)
    with pytest.raises(UsageError, match="two H x W x 3 images of one shape"):
        channel_mean_error(hr[:8], hr)


def test_run_folder_errors_per_image_and_summary(tiny_data, tmp_path, capsys):
    suite = BuiltSuite.open(tiny_data, "train")
    run = tmp_path / "run"
    (run / "images").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"suite": {"name": "train", "version": 1}}))
    shifts = {}
    for index, entry in enumerate(suite.entries[:3]):
        hr = read_image(suite.hr_path(entry)).astype(np.int16)
        shift = np.array([index, -index, 2 * index])
        write_png(run / "images" / f"{entry['id']}.png", np.clip(hr + shift, 0, 255).astype(np.uint8))
        shifts[entry["id"]] = shift
    errors = run_colour_errors(run, tiny_data)
    assert sorted(errors) == sorted(shifts)
    for image_id, shift in shifts.items():  # clipping at 0/255 makes it inexact only at saturated pixels
        assert np.allclose(errors[image_id], shift, atol=0.5)
    assert np.allclose(summary(errors), np.mean(np.abs(np.stack(list(shifts.values()))), axis=0), atol=0.5)
    assert main([str(run), "--data", str(tiny_data)]) == 0
    assert str(run) in capsys.readouterr().out
    assert main([str(tmp_path), "--data", str(tiny_data)]) == 2  # not a run folder: one line, exit 2
    assert "no run.json" in capsys.readouterr().err
