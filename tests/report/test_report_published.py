"""The published leaderboard in ``leaderboard/`` is current with its committed result files.

Regenerating from ``leaderboard/results`` (run.json and samples.jsonl only: the full-size outputs are not
committed, nor is the data folder) must give byte-identical pages, JSON, plots and crops. Comparison crops need
the images, so they are committed files; ``crops.json`` records the sha256 of the image each was cut from, and a
regeneration without the images reuses them (see ``op4ksr_bench.report.compare``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from op4ksr_bench.report.compare import recorded_requests
from op4ksr_bench.report.site import build_site

LEADERBOARD = Path(__file__).resolve().parents[2] / "leaderboard"
SIZE_LIMIT = 12_000_000  # every image of 3 suites x 10 methods: crops are about 0.36 MB per method per 21 images
"""Bytes the committed leaderboard (site and result files) may take."""


@pytest.fixture(scope="module")
def published() -> dict:
    manifest = LEADERBOARD / "manifest.json"
    if not manifest.is_file():
        pytest.fail("leaderboard/ holds no published leaderboard; run scripts/publish-leaderboard.sh")
    return json.loads(manifest.read_text(encoding="utf-8"))


def _committed_results() -> list[Path]:
    return sorted(p for p in (LEADERBOARD / "results").rglob("*") if p.name in ("run.json", "samples.jsonl"))


def test_published_leaderboard_is_current(published, tmp_path):
    clone = tmp_path / "leaderboard"
    for path in [*(LEADERBOARD / name for name in published["files"]), LEADERBOARD / "manifest.json"]:
        (clone / path.relative_to(LEADERBOARD)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, clone / path.relative_to(LEADERBOARD))
    for path in _committed_results():
        (clone / path.relative_to(LEADERBOARD)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, clone / path.relative_to(LEADERBOARD))
    crop_size, requests = recorded_requests(json.loads((LEADERBOARD / "crops.json").read_text(encoding="utf-8")))
    report = build_site(clone / "results", clone, tmp_path / "no-data", requests, crop_size)
    assert sorted(report.written | {"manifest.json"}) == sorted([*published["files"], "manifest.json"])
    stale = [
        name
        for name in [*published["files"], "manifest.json"]
        if (clone / name).read_bytes() != (LEADERBOARD / name).read_bytes()
    ]
    assert not stale, (
        f"leaderboard/ is not current with leaderboard/results; run scripts/publish-leaderboard.sh: {stale}"
    )


def test_published_leaderboard_is_small_and_complete(published):
    files = [LEADERBOARD / name for name in published["files"]] + _committed_results()
    total = sum(path.stat().st_size for path in files)
    assert total < SIZE_LIMIT, f"the committed leaderboard takes {total:,} bytes"
    data = json.loads((LEADERBOARD / "data.json").read_text(encoding="utf-8"))
    assert data["skipped"] == [], data["skipped"]
    assert any(name.startswith("compare/") for name in published["files"])
    assert all(not path.name.endswith(".png") for path in _committed_results())


def test_published_leaderboard_holds_the_default_run(published):
    """bicubic, lanczos and op4ksr (default cpu-skip-pf) patch-free and tiled on each suite; realesrgan-x4plus on
    4ksr-syn (CPU run)."""
    data = json.loads((LEADERBOARD / "data.json").read_text(encoding="utf-8"))
    suites = {suite["name"]: suite for suite in data["suites"]}
    assert sorted(suites) == ["4ksr-realsquare", "4ksr-realvary", "4ksr-syn"]
    for name, suite in suites.items():
        rows = {(row["spec"], row["inference"] == "patch-free") for row in suite["rows"]}
        expected = {("bicubic", True), ("lanczos", True), ("op4ksr", True), ("op4ksr", False)}
        if name == "4ksr-syn":
            expected.add(("realesrgan-x4plus", True))
        assert expected <= rows, f"{name}: missing {sorted(expected - rows)}"


def test_published_default_op4ksr_beats_bicubic_on_4ksr_syn(published):
    """The default checkpoint's bar (reference_model/checkpoints/cpu-skip-pf/README.md), on the published rows:
    at least +0.5 dB mean PSNR and a higher SSIM than bicubic on every image of 4ksr-syn."""
    data = json.loads((LEADERBOARD / "data.json").read_text(encoding="utf-8"))
    suite = next(suite for suite in data["suites"] if suite["name"] == "4ksr-syn")
    rows = {row["method"]: row for row in suite["rows"] if row["inference"] == "patch-free"}
    default, bicubic = rows["OP4KSR (reference, cpu-skip-pf)"], rows["Bicubic"]
    assert default["images"] == bicubic["images"] == "7 of 7"
    assert default["metrics"]["psnr"] >= bicubic["metrics"]["psnr"] + 0.5
    assert default["metrics"]["ssim"] > bicubic["metrics"]["ssim"]
