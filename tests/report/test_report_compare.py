"""Visual comparisons: deterministic crops from LR, HR and every run's output; reuse without the images."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from op4ksr_bench.errors import UsageError
from op4ksr_bench.imageio import read_image
from op4ksr_bench.report.compare import CropRequest, recorded_requests, select_windows
from op4ksr_bench.report.site import build_site


def test_automatic_windows_find_the_textured_and_the_smooth_region(textured):
    image = textured(7, size=128, patch=(64, 32))
    corners = select_windows(image, 48)
    x, y = corners["detail"]
    assert x <= 64 and x + 48 >= 96 and y <= 32 and y + 48 >= 64
    x, y = corners["smooth"]
    assert x + 48 <= 64 or y >= 64  # away from the texture
    assert select_windows(image, 48) == corners  # deterministic
    x, y = select_windows(image, 48, step=4)["detail"]
    assert x % 4 == 0 and y % 4 == 0
    flat = np.zeros((20, 30, 3), np.uint8)
    assert select_windows(flat, 64) == {"detail": (0, 0), "smooth": (0, 0)}  # clamped window, first on ties


def test_crop_request_parsing():
    assert CropRequest.parse("4ksr-syn/0007:1024,512,256") == CropRequest("4ksr-syn/0007", 1024, 512, 256)
    assert CropRequest.parse("a:b:4,8,16").image_id == "a:b"
    for bad in ("0007", "0007:1,2", "0007:1,2,x", ":1,2,3", "0007:1,2,0"):
        with pytest.raises(UsageError):
            CropRequest.parse(bad)


def test_comparison_pages_show_the_same_crop_from_every_source(compared, tmp_path):
    results, data, hr, outputs = compared
    out = tmp_path / "site"
    build_site(results, out, data, crop_size=64)
    crops = json.loads((out / "crops.json").read_text(encoding="utf-8"))
    record = crops["suites"]["tiny-syn-v1"]["images"]["img-a"]
    assert (record["width"], record["height"], record["has_hr"]) == (128, 128, True)
    detail, smooth = record["crops"]
    assert (detail["name"], smooth["name"]) == ("detail", "smooth")
    assert detail["how"] == "highest gradient energy of the HR image"
    x, y, size = detail["x"], detail["y"], detail["size"]
    assert size == 64 and x % 4 == 0 and y % 4 == 0
    assert x <= 64 and x + size >= 96 and y <= 32 and y + size >= 64  # found the textured patch
    files = detail["files"]
    assert sorted(files) == sorted(
        ["lr", "hr", "tiny-syn@v1/bicubic/r0", "tiny-syn@v1/lanczos/r0", "tiny-syn@v1/op4ksr/r0"]
    )
    lr = read_image(out / files["lr"]["file"])
    assert lr.shape == (16, 16, 3)  # the LR crop stays at LR resolution
    assert np.array_equal(read_image(out / files["hr"]["file"]), hr["img-a"][y : y + size, x : x + size])
    bicubic = read_image(out / files["tiny-syn@v1/bicubic/r0"]["file"])
    assert np.array_equal(bicubic, outputs["bicubic"]["img-a"][y : y + size, x : x + size])
    page = (out / "compare" / "tiny-syn-v1" / "img-a.html").read_text(encoding="utf-8")
    for entry in files.values():
        assert f'src="../../{entry["file"]}"' in page
    assert page.count('<figure class="tile"') == 10  # 5 sources x 2 crops
    assert 'type="range"' in page and 'class="before"' in page and 'class="after"' in page
    index = (out / "index.html").read_text(encoding="utf-8")
    assert 'href="compare/tiny-syn-v1/img-a.html"' in index and 'href="compare/tiny-syn-v1/img-b.html"' in index
    # the run that failed on img-b shows "-" with the reason in its tile
    page_b = (out / "compare" / "tiny-syn-v1" / "img-b.html").read_text(encoding="utf-8")
    assert "- failed: out of memory" in page_b
    total = sum(path.stat().st_size for path in (out / "crops").rglob("*") if path.is_file())
    assert total < 200_000


def test_user_crops_are_added_and_checked(compared, tmp_path):
    results, data, hr, _ = compared
    out = tmp_path / "site"
    build_site(results, out, data, [CropRequest.parse("img-b:8,96,32")], crop_size=64)
    record = json.loads((out / "crops.json").read_text(encoding="utf-8"))["suites"]["tiny-syn-v1"]["images"]["img-b"]
    names = [crop["name"] for crop in record["crops"]]
    assert names == ["detail", "smooth", "x8-y96-s32"]
    crops = json.loads((out / "crops.json").read_text(encoding="utf-8"))
    assert recorded_requests(crops) == (64, [CropRequest("img-b", 8, 96, 32)])
    user = record["crops"][2]["files"]
    assert np.array_equal(read_image(out / user["hr"]["file"]), hr["img-b"][96:128, 8:40])
    with pytest.raises(UsageError, match="multiples of the suite scale 4"):
        build_site(results, out, data, [CropRequest.parse("img-b:2,96,32")], crop_size=64)
    with pytest.raises(UsageError, match="outside the 128x128 output"):
        build_site(results, out, data, [CropRequest.parse("img-b:120,96,32")], crop_size=64)
    with pytest.raises(UsageError, match="no image nope"):
        build_site(results, out, data, [CropRequest.parse("nope:0,0,32")], crop_size=64)


def test_committed_crops_are_reused_without_data_or_outputs(compared, tmp_path):
    """A clean clone has result files and the committed site, but neither the suite nor the 4K outputs."""
    results, data, _, _ = compared
    published = tmp_path / "published"
    shutil.copytree(results, published / "results")
    build_site(published / "results", published, data, crop_size=64)
    clone = tmp_path / "clone"
    shutil.copytree(published, clone)
    for outputs in (clone / "results").rglob("outputs"):
        shutil.rmtree(outputs)
    build_site(clone / "results", clone, tmp_path / "empty-data", crop_size=64)
    for path in sorted(published.rglob("*")):
        if path.is_file() and "results" not in path.relative_to(published).parts:
            assert (clone / path.relative_to(published)).read_bytes() == path.read_bytes(), path


def test_suite_without_ground_truth_or_with_another_hash(tmp_path, make_run, make_suite, textured):
    data, results = tmp_path / "data", tmp_path / "results"
    digest = make_suite(data, "tiny-real", {"x": textured(3)}, with_hr=False)
    make_run(results, method="bicubic", suite="tiny-real", values={"x": {"niqe": 5.0}}, metrics=("niqe",),
             suite_hash=digest, outputs={"x": textured(3)})  # fmt: skip
    out = tmp_path / "site"
    build_site(results, out, data, crop_size=64)
    page = (out / "compare" / "tiny-real-v1" / "x.html").read_text(encoding="utf-8")
    assert "HR (ground truth)" not in page and "LR (input)" in page
    crops = json.loads((out / "crops.json").read_text(encoding="utf-8"))["suites"]["tiny-real-v1"]["images"]["x"]
    assert crops["crops"][0]["how"] == "highest gradient energy of the LR image" and not crops["has_hr"]
    other = tmp_path / "other"
    make_run(other, method="bicubic", suite="tiny-real", values={"x": {"niqe": 5.0}}, metrics=("niqe",),
             suite_hash="f" * 64)  # fmt: skip
    report = build_site(other, tmp_path / "site2", data, crop_size=64)
    assert "the runs used ffffffffffff" in report.data_problems["tiny-real-v1"]
    assert not (tmp_path / "site2" / "compare").exists()


def test_benchmark_select_windows_uhd(benchmark):
    """Crop selection on a 3840x2160 HR (the 4KSR-Syn UHD size), the per-image cost of a comparison page."""
    image = np.random.default_rng(0).integers(0, 256, (2160, 3840, 3), dtype=np.uint8)
    corners = benchmark(select_windows, image, 128, 4)
    assert set(corners) == {"detail", "smooth"}
