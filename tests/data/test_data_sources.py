"""folder: and hf: sources (offline: local imagefolder and save_to_disk datasets), suite files, ls, export, DIV4K-50."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from op4ksr_bench.data import SOURCES, parse_source
from op4ksr_bench.data.sources import FolderSource, HuggingFaceSource, load_source_image
from op4ksr_bench.errors import ManifestError, UsageError


def test_folder_source_is_recursive_sorted_and_licensed(photo_folder):
    items = FolderSource(photo_folder).list_images()
    assert len(items) == 8 and [item.id for item in items] == sorted(item.id for item in items)
    assert any(item.original_path.startswith("sub/") for item in items)
    assert all(item.licence.startswith("see LICENSE: CC0-1.0") for item in items)
    first = items[0]
    assert load_source_image(first).shape == (first.height, first.width, 3)
    with pytest.raises(UsageError, match="is not a folder"):
        FolderSource(photo_folder / "missing")


def test_parse_source_specs(tmp_path, photo_folder):
    assert isinstance(parse_source(f"folder:{photo_folder}", tmp_path), FolderSource)
    hf = parse_source("hf:user/set:test", tmp_path)
    assert isinstance(hf, HuggingFaceSource) and (hf.dataset, hf.split) == ("user/set", "test")
    assert parse_source("hf:user/set", tmp_path).split == "train"
    with pytest.raises(UsageError, match="unknown source 'ftp:x'"):
        parse_source("ftp:x", tmp_path)


@pytest.mark.parametrize("family", SOURCES.names())
def test_every_registered_source_family_states_its_spelling_and_refuses_a_bad_argument(family, tmp_path):
    cls = SOURCES.get(family)
    assert cls.usage.split(":")[0] == family
    bad = f"{family}:x" if ":" not in cls.usage else f"{family}:"
    with pytest.raises(UsageError, match=cls.usage.replace("[", r"\[")):
        parse_source(bad, tmp_path)


def test_the_source_modules_do_not_import_each_other():
    import subprocess
    import sys

    code = "import sys, op4ksr_bench.data.sources; print('op4ksr_bench.data.debian' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_hf_source_reads_a_local_imagefolder(tmp_path, make_image):
    folder = tmp_path / "imagefolder" / "train"
    folder.mkdir(parents=True)
    for index in range(3):
        Image.fromarray(make_image(40, 60, seed=index)).save(folder / f"img{index}.png")
    source = HuggingFaceSource(str(tmp_path / "imagefolder"), "train", tmp_path / "cache")
    items = source.list_images()
    assert len(items) == 3 and all((item.width, item.height) == (60, 40) for item in items)
    assert load_source_image(items[0]).shape == (40, 60, 3)
    assert source.info()["rows"] == 3


def test_hf_source_reads_save_to_disk_and_splits(tmp_path, make_image):
    import datasets

    images = [Image.fromarray(make_image(32, 48, seed=index)) for index in range(2)]
    dataset = datasets.Dataset.from_dict({"picture": images, "label": [0, 1]}).cast_column("picture", datasets.Image())
    datasets.DatasetDict({"test": dataset}).save_to_disk(str(tmp_path / "saved"))
    items = HuggingFaceSource(str(tmp_path / "saved"), "test", tmp_path / "cache").list_images()
    assert [item.id for item in items] == ["saved-000000", "saved-000001"]
    assert np.array_equal(load_source_image(items[1]), np.asarray(images[1]))
    with pytest.raises(UsageError, match="no split 'train'"):
        HuggingFaceSource(str(tmp_path / "saved"), "train", tmp_path / "cache").list_images()
    datasets.Dataset.from_dict({"label": [0]}).save_to_disk(str(tmp_path / "noimage"))
    with pytest.raises(UsageError, match="no image column"):
        HuggingFaceSource(str(tmp_path / "noimage"), "train", tmp_path / "cache").list_images()


def test_repository_suites_use_contract_metric_names():
    from op4ksr_bench.data.suites import DEFAULT_SUITES, load_suite_spec, suite_names
    from op4ksr_bench.metrics import METRICS

    known = set(METRICS.names())
    assert set(DEFAULT_SUITES) | {"div4k-50"} <= set(suite_names())
    for name in suite_names():
        spec = load_suite_spec(name)
        assert set(spec.metrics) <= known, name
        assert spec.crop_border == (16 if spec.scale == 16 else 4)
    assert (
        "pas" in load_suite_spec("4ksr-realvary").metrics and "psnr" not in load_suite_spec("4ksr-realsquare").metrics
    )
    with pytest.raises(UsageError, match="Did you mean '4ksr-syn'"):
        load_suite_spec("4ksr-sin")


def test_ls_suites_shows_built_state(tiny_suite_dir, tmp_path, capsys):
    from op4ksr_bench.data.commands import build_dataset, ls_suites

    data = tmp_path / "data"
    build_dataset(
        suite="4ksr-realsquare", sources=[], data=data, limit=1, seed=None, workers=1, force=False, div4k=None
    )
    ls_suites(data)
    out = capsys.readouterr().out
    assert "4ksr-realsquare" in out and "yes: 1 images" in out and "train" in out


def test_export_round_trips_through_datasets(tiny_suite_dir, tmp_path):
    import datasets
    from op4ksr_bench.data.commands import build_dataset, export
    from op4ksr_bench.data.manifest import BuiltSuite

    data = tmp_path / "data"
    build_dataset(suite="4ksr-syn", sources=[], data=data, limit=None, seed=None, workers=1, force=False, div4k=None)
    export(suite="4ksr-syn", out=tmp_path / "hf", data=data)
    loaded = datasets.load_from_disk(str(tmp_path / "hf"))
    suite = BuiltSuite.open(data, "4ksr-syn")
    assert loaded["id"] == [entry["id"] for entry in suite.entries]
    assert np.array_equal(
        np.asarray(loaded[0]["lr"].convert("RGB")), np.asarray(Image.open(suite.lr_path(suite.entries[0])))
    )
    assert json.loads(loaded[0]["degradation"])["seed"] == suite.entries[0]["degradation"]["seed"]
    assert json.loads((tmp_path / "hf" / "op4ksr_suite.json").read_text())["hash"] == suite.hash
    with pytest.raises(UsageError, match="not empty"):
        export(suite="4ksr-syn", out=tmp_path / "hf", data=data)


def _div4k_copy(folder: Path, pairs: int, hr_side: int = 4096) -> None:
    (folder / "DIV4K-50" / "LR").mkdir(parents=True)
    (folder / "DIV4K-50" / "HR").mkdir(parents=True)
    for index in range(pairs):
        Image.new("RGB", (256, 256), (index * 40, 80, 120)).save(folder / "DIV4K-50" / "LR" / f"{index:03d}_lr.png")
        Image.new("RGB", (hr_side, hr_side), (index * 40, 80, 121)).save(
            folder / "DIV4K-50" / "HR" / f"{index:03d}.png"
        )


def test_div4k_importer_checks_structure_and_writes_the_manifest(tmp_path, monkeypatch):
    from op4ksr_bench.data.commands import build_dataset, validate
    from op4ksr_bench.data.manifest import BuiltSuite
    from op4ksr_bench.data.suites import suites_dir

    suites = tmp_path / "suites"
    suites.mkdir()
    spec = yaml.safe_load((suites_dir() / "div4k-50.yaml").read_text())
    spec["count"] = 2  # the real copy has 50 pairs; the test writes 2 at the real sizes
    (suites / "div4k-50.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.setenv("OP4KSR_SUITES", str(suites))
    copy = tmp_path / "copy"
    _div4k_copy(copy, 2)
    data = tmp_path / "data"
    build_dataset(suite="all", sources=[], data=data, limit=None, seed=None, workers=1, force=False, div4k=copy)
    suite = BuiltSuite.open(data, "div4k-50")
    assert [entry["id"] for entry in suite.entries] == ["000", "001"]
    entry = suite.entries[0]
    assert (entry["lr_width"], entry["hr_width"], suite.info["scale"]) == (256, 4096, 16)
    assert suite.lr_path(entry).read_bytes() == (copy / "DIV4K-50" / "LR" / "000_lr.png").read_bytes()
    validate(suite="div4k-50", data=data)
    broken = tmp_path / "broken"
    _div4k_copy(broken, 3, hr_side=2048)
    with pytest.raises(ManifestError, match="expected 4096x4096.*3 pairs, expected 2|3 pairs, expected 2"):
        build_dataset(
            suite="all", sources=[], data=tmp_path / "d2", limit=None, seed=None, workers=1, force=False, div4k=broken
        )
    with pytest.raises(UsageError, match="pass --div4k DIR"):
        build_dataset(
            suite="div4k-50", sources=[], data=data, limit=None, seed=None, workers=1, force=False, div4k=None
        )
