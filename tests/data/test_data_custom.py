"""Custom named suites: built from a folder or from LR/HR pairs, found and run from their data folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from op4ksr_bench.data.builder import rejection_summary
from op4ksr_bench.data.commands import build_dataset, ls_suites, validate
from op4ksr_bench.data.manifest import BuiltSuite
from op4ksr_bench.errors import ManifestError, UsageError
from op4ksr_bench.imageio import read_image, write_png
from op4ksr_bench.results import load_run
from op4ksr_bench.run_commands import cli_run

from .conftest import natural_image


def _build(data: Path, **kwargs) -> None:
    arguments = {"suite": "all", "sources": [], "data": data, "limit": None, "seed": None, "workers": 1,
                 "force": False, "div4k": None}  # fmt: skip
    arguments.update(kwargs)
    build_dataset(**arguments)


def _run(suite: str, data: Path, results: Path, metrics: str = "psnr") -> Path:
    cli_run(method="bicubic", suite=suite, data=data, results=results, metrics=metrics, opts=[], device="cpu",
            dtype="float32", seed=0, limit=None, shard=None)  # fmt: skip
    (folder,) = sorted(results.glob(f"{suite}@v*/bicubic/run-*"))
    return folder


def _pairs(root: Path, sizes: list[tuple[int, int]], scale: int = 4) -> tuple[Path, Path]:
    lr_dir, hr_dir = root / "LR", root / "HR"
    lr_dir.mkdir(parents=True)
    hr_dir.mkdir(parents=True)
    for index, (width, height) in enumerate(sizes):
        hr = natural_image(height * scale, width * scale, seed=index)
        lr = hr.reshape(height, scale, width, scale, 3).mean(axis=(1, 3)).round().astype(np.uint8)
        write_png(hr_dir / f"pic{index}_hr.png", hr)
        write_png(lr_dir / f"pic{index}_lr.png", lr)
    return lr_dir, hr_dir


def test_named_suite_from_a_folder_is_built_found_and_run_under_its_name(
    tiny_suite_dir, photo_folder, tmp_path, monkeypatch, capsys
):
    data, results = tmp_path / "data", tmp_path / "results"
    _build(data, suite="4ksr-syn", sources=[f"folder:{photo_folder}"], name="my-syn")
    assert "--suite my-syn" in capsys.readouterr().out
    built = BuiltSuite.open(data, "my-syn")
    assert built.spec.name == "my-syn" and built.info["name"] == "my-syn" and built.spec.task == "synthetic"
    assert built.spec.source["pool"] == "my-syn" and built.entries
    assert not (data / "4ksr-syn").exists()  # the template's own suite is not built
    monkeypatch.setenv("OP4KSR_SUITES", str(tmp_path / "no-suites-defined-here"))
    folder = _run("my-syn", data, results)  # found from <data>/my-syn/suite.yaml
    record, _ = load_run(folder)
    assert record["suite"]["name"] == "my-syn" and record["counts"]["ok"] == len(built.entries)
    validate(suite="my-syn", data=data)
    ls_suites(data)
    assert "my-syn" in capsys.readouterr().out


def test_named_suite_refuses_a_defined_name_and_needs_a_source(tiny_suite_dir, photo_folder, tmp_path):
    with pytest.raises(UsageError, match="defined in datasets/"):
        _build(tmp_path / "data", suite="4ksr-syn", sources=[f"folder:{photo_folder}"], name="4ksr-realvary")
    with pytest.raises(UsageError, match="add --source folder:PATH"):
        _build(tmp_path / "data", name="mine")
    with pytest.raises(UsageError, match="lower-case letters"):
        _build(tmp_path / "data", sources=[f"folder:{photo_folder}"], name="My Suite")
    with pytest.raises(UsageError, match="add --name NAME"):
        _build(tmp_path / "data", suite="4ksr-syn", sources=[f"pairs:{photo_folder},{photo_folder}"])


def test_pairs_are_imported_with_checks_and_run_under_their_name(tmp_path, monkeypatch):
    monkeypatch.setenv("OP4KSR_SUITES", str(tmp_path / "suites"))
    lr_dir, hr_dir = _pairs(tmp_path / "mine", [(24, 20), (20, 28), (32, 16)])
    data, results = tmp_path / "data", tmp_path / "results"
    _build(data, sources=[f"pairs:{lr_dir},{hr_dir}"], name="my-pairs")
    built = BuiltSuite.open(data, "my-pairs")
    assert built.spec.task == "paired" and built.spec.scale == 4 and built.spec.crop_border == 4
    assert [entry["id"] for entry in built.entries] == ["pic0", "pic1", "pic2"]
    assert str(tmp_path) not in (data / "my-pairs" / "suite.yaml").read_text()  # no machine-local path hashed
    for entry in built.entries:
        assert np.array_equal(read_image(built.hr_path(entry)), read_image(hr_dir / f"{entry['id']}_hr.png"))
    folder = _run("my-pairs", data, results)
    record, samples = load_run(folder)
    assert record["suite"]["name"] == "my-pairs" and record["counts"]["ok"] == 3
    assert all(sample["metrics"]["psnr"] > 15 for sample in samples)
    from op4ksr_bench.report.commands import leaderboard

    leaderboard(results=results, out=tmp_path / "site", data=data, crops=[], crop_size=16)
    assert ">my-pairs v1<" in (tmp_path / "site" / "index.html").read_text()  # its own table, under its name


def test_pairs_problems_are_all_listed(tmp_path, monkeypatch):
    monkeypatch.setenv("OP4KSR_SUITES", str(tmp_path / "suites"))
    lr_dir, hr_dir = _pairs(tmp_path / "mine", [(24, 20), (20, 28), (16, 16)])
    hr = read_image(hr_dir / "pic1_hr.png")
    write_png(hr_dir / "pic1_hr.png", hr[:-4])  # HR 80x108: not x4 of 20x28
    (hr_dir / "pic2_hr.png").unlink()  # unpaired LR
    (lr_dir / "pic3_lr.png").write_bytes(b"not a png")
    (hr_dir / "pic3_hr.png").write_bytes(b"not a png either")
    with pytest.raises(ManifestError) as caught:
        _build(tmp_path / "data", sources=[f"pairs:{lr_dir},{hr_dir}"], name="bad-pairs")
    message = str(caught.value)
    assert "pic1: HR 80x108 is not x4 of LR 20x28 (expected 80x112)" in message
    assert "pic2_lr.png: no HR image" in message and "pic3: unreadable image pic3_lr.png, pic3_hr.png" in message
    assert not (tmp_path / "data" / "bad-pairs").exists()


def test_spec_file_builds_a_paired_suite_with_its_metrics(tmp_path, monkeypatch):
    monkeypatch.setenv("OP4KSR_SUITES", str(tmp_path / "suites"))
    lr_dir, hr_dir = _pairs(tmp_path / "mine", [(24, 20), (20, 28)])
    spec = {
        "name": "lab-x4", "version": 3, "task": "paired", "scale": 4, "seed": 0, "crop_border": 2,
        "metrics": ["psnr", "ssim"], "count": 2, "source": {"specs": [f"pairs:{lr_dir},{hr_dir}"]},
    }  # fmt: skip
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(spec))
    data = tmp_path / "data"
    _build(data, spec_file=path)
    built = BuiltSuite.open(data, "lab-x4")
    assert built.spec.version == 3 and built.spec.metrics == ("psnr", "ssim") and len(built.entries) == 2
    record, _ = load_run(_run("lab-x4", data, tmp_path / "results", metrics="psnr,ssim"))
    assert record["suite"]["version"] == 3 and set(record["metrics"]) == {"psnr", "ssim"}
    path.write_text(yaml.safe_dump({**spec, "count": 5}))
    with pytest.raises(ManifestError, match="2 pairs, the suite expects count 5"):
        _build(data, spec_file=path, force=True)


def test_rejections_state_the_measured_value_and_the_threshold(tiny_suite_dir, photo_folder, tmp_path):
    suites = yaml.safe_load((tiny_suite_dir / "4ksr-syn.yaml").read_text())
    suites["curation"]["min_long_side"] = 4000
    (tiny_suite_dir / "4ksr-syn.yaml").write_text(yaml.safe_dump(suites))
    with pytest.raises(ManifestError) as caught:
        _build(tmp_path / "data", suite="4ksr-syn", sources=[f"folder:{photo_folder}"], name="too-small")
    assert "resolution x8 (e.g." in str(caught.value)
    assert "below the minimum long side 4000 / short side 192 px" in str(caught.value)
    summary = rejection_summary([{"id": "a", "reason": "noise: estimated sigma 9.00 above 5.0"}])
    assert summary == "noise x1 (e.g. a: estimated sigma 9.00 above 5.0)"
