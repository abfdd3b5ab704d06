"""Item 4: the leaderboard accepts every schema-valid run, publishes only verified outputs, links stay in-site."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from op4ksr_bench.imageio import write_png
from op4ksr_bench.report.site import build_site

SCHEME = re.compile(r'(?:href|src)="\s*(?!data:,")([a-zA-Z][a-zA-Z0-9+.-]*):')  # the empty favicon aside


@pytest.fixture
def two_runs(bench, tools):
    """Two complete runs of one suite (bicubic and lanczos) with saved outputs; returns their folders."""
    bench["suite"]()
    tools.run_bicubic()
    tools.run_bicubic(method="lanczos")
    return tools.run_folder(bench["results"]), tools.run_folder(bench["results"], slug="lanczos")


def _edit_json_text(path: Path, old: str, new: str) -> None:
    """Edit the raw text (NaN and Infinity are not JSON our writer emits; an attacker's file may hold them)."""
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def _site(bench, out=None):
    out = out or bench["tmp"] / "site"
    report = build_site(bench["results"], out, bench["data"])
    return out, report, (out / "index.html").read_text()


def _first_sample_key(folder: Path, key: str) -> str:
    line = (folder / "samples.jsonl").read_text().splitlines()[0]
    return re.search(rf'"{key}": [^,}}]+', line).group(0)


ODD = {
    "nan seconds": ("samples", "seconds", '"seconds": NaN'),
    "infinite peak memory": ("samples", "peak_memory_bytes", '"peak_memory_bytes": Infinity'),
    "string seconds": ("samples", "seconds", '"seconds": "fast"'),
    "1e308 mean": ("summary", "mean", "1e308"),
    "infinite mean": ("summary", "mean", "-Infinity"),
    "string mean": ("summary", "mean", '"high"'),
}


@pytest.mark.parametrize("case", sorted(ODD))
def test_odd_but_schema_valid_values_show_as_dash_with_a_note(bench, two_runs, case):
    bicubic, _ = two_runs
    where, key, value = ODD[case]
    if where == "samples":
        for line_key in [_first_sample_key(bicubic, key)]:
            _edit_json_text(bicubic / "samples.jsonl", line_key, value)
    else:
        record = json.loads((bicubic / "run.json").read_text())
        record["summary"]["psnr"]["mean"] = "__VALUE__"
        (bicubic / "run.json").write_text(json.dumps(record).replace('"__VALUE__"', value))
    out, report, index = _site(bench)
    assert [row.run.path for table in report.tables for row in table.rows] and not report.skipped
    assert "not shown: the recorded value" in index
    data = json.loads((out / "data.json").read_text())  # strict JSON: no NaN or Infinity reached the data
    assert data["suites"][0]["rows"]


def test_infinite_detail_value_and_a_metric_name_with_mathtext(bench, two_runs):
    bicubic, _ = two_runs
    record = json.loads((bicubic / "run.json").read_text())
    name = "evil$\\x{"
    record["metrics"][name] = {**record["metrics"]["psnr"], "name": name}
    record["summary"][name] = {"mean": 3.0, "median": 3.0, "std": 0.0, "count": 3}
    record["summary"]["pas.p8"] = {"mean": "__INF__", "median": 1.0, "std": 0.0, "count": 3}
    (bicubic / "run.json").write_text(json.dumps(record).replace('"__INF__"', "Infinity"))
    out, report, index = _site(bench)
    assert not report.skipped and "evil$\\x{" in index
    assert (out / "plots" / "tiny-v1-quality-latency.png").stat().st_size > 1000  # mathtext did not abort it


def test_a_run_that_cannot_be_tabulated_is_skipped_with_its_reason(bench, two_runs):
    bicubic, nearest = two_runs
    record = json.loads((bicubic / "run.json").read_text())
    record["suite"]["scale"] = 10**400  # schema-valid (an integer), but no table can use it
    (bicubic / "run.json").write_text(json.dumps(record))
    (nearest.parent / "run-broken").mkdir()
    (nearest.parent / "run-broken" / "run.json").write_bytes(b"\xff\xfe not json")
    out, report, index = _site(bench)
    reasons = {skip.path.split("/")[-1]: skip.reason for skip in report.skipped}
    assert set(reasons) == {bicubic.name, "run-broken"}
    assert reasons[bicubic.name].startswith("cannot be tabulated") and "not valid JSON" in reasons["run-broken"]
    assert [row.run.label for table in report.tables for row in table.rows] == ["Lanczos-3"]
    assert "cannot be tabulated" in index


def _crop_sources(out: Path) -> set[str]:
    crops = json.loads((out / "crops.json").read_text())
    return {
        source
        for suite in crops["suites"].values()
        for image in suite["images"].values()
        for crop in image["crops"]
        for source in crop["files"]
    }


def test_only_outputs_inside_the_run_with_their_recorded_sha256_are_published(bench, two_runs):
    bicubic, nearest = two_runs
    outside = bench["tmp"] / "secret.png"
    write_png(outside, np.full((48, 64, 3), 200, np.uint8))
    rows = [json.loads(line) for line in (bicubic / "samples.jsonl").read_text().splitlines()]
    for row in rows:
        row["output"] = "../../../../secret.png"
    (bicubic / "samples.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    for path in (nearest / "images").iterdir():  # same name, other pixels: the recorded sha256 differs
        write_png(path, np.zeros((48, 64, 3), np.uint8))
    out, report, _ = _site(bench)
    sources = _crop_sources(out)
    assert sources == {"lr", "hr"}  # neither run's output was cropped
    (bicubic / "images" / "img000.png").unlink()  # a link to the secret inside the run folder: refused too
    (bicubic / "images" / "img000.png").symlink_to(outside)
    rows[0]["output"] = "images/img000.png"
    (bicubic / "samples.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    out, report, _ = _site(bench)
    assert _crop_sources(out) == {"lr", "hr"}


def test_verified_outputs_are_still_published(bench, two_runs):
    out, report, _ = _site(bench)
    assert len(_crop_sources(out)) == 4  # lr, hr and both runs


def test_a_results_folder_named_like_a_url_scheme_never_becomes_a_link(bench, two_runs):
    out = bench["tmp"] / "site"
    hostile_results = out / "runs" / "javascript:alert(1)"
    shutil.copytree(bench["results"], hostile_results)
    build_site(hostile_results, out, bench["data"])
    pages = [path.read_text() for path in out.rglob("*.html")]
    assert len(pages) >= 3
    for text in pages:
        assert not SCHEME.findall(text), SCHEME.findall(text)
    run_page = next(text for text in pages if "samples.jsonl</a>" in text)
    assert 'href="./javascript:alert(1)/tiny@v1/' in run_page


def test_strings_are_escaped_for_html_and_page_names_are_slugged(bench, two_runs):
    """Held before: script, attribute, ``javascript:`` and template payloads never reach a page as markup."""
    bicubic, _ = two_runs
    record = json.loads((bicubic / "run.json").read_text())
    record["method"]["card"]["display_name"] = '<script>alert(1)</script>" onmouseover="x {{ 7*7 }}'
    record["method"]["spec"] = "javascript:alert(2)"
    record["method"]["options"]["note"] = "</pre><img src=x onerror=alert(3)>"
    (bicubic / "run.json").write_text(json.dumps(record))
    renamed = bicubic.parent / 'run-<b>"x'
    bicubic.rename(renamed)
    out, report, index = _site(bench)
    assert "x {{ 7*7 }}" in index  # the template payload is shown as text, never evaluated
    for path in out.rglob("*"):
        assert re.fullmatch(r"[A-Za-z0-9._/-]+", path.relative_to(out).as_posix()), path
    for path in out.rglob("*.html"):
        text = path.read_text()
        assert "<script>alert" not in text and "<img src=x" not in text and '" onmouseover="' not in text
        assert not SCHEME.findall(text)


def test_result_files_behind_links_are_skipped(bench, two_runs):
    bicubic, lanczos = two_runs
    elsewhere = bench["tmp"] / "elsewhere.json"
    (bicubic / "run.json").rename(elsewhere)
    (bicubic / "run.json").symlink_to(elsewhere)
    out, report, index = _site(bench)
    assert [skip.reason for skip in report.skipped] == [
        f"fails schema validation: {skip.path}: run.json is a symbolic link; result files must be the files themselves"
        for skip in report.skipped
    ] and len(report.skipped) == 1


def test_crops_are_never_cut_from_an_edited_suite(bench, two_runs):
    manifest = bench["data"] / "tiny" / "manifest.jsonl"
    manifest.write_text(manifest.read_text().replace('"attribution":"test"', '"attribution":"edited"'))
    out, report, _ = _site(bench)
    assert any("changed since the build" in problem for problem in report.data_problems.values())
    assert _crop_sources(out) == set()
