"""The static site: escaping, determinism, stale files, skipped runs, and the CLI command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from op4ksr_bench.cli import app
from op4ksr_bench.report.site import build_site

HOSTILE = 'Evil <script>alert("x")</script> & $\\frac{1}{0}$'


def _pages(out: Path) -> dict[str, bytes]:
    return {
        path.relative_to(out).as_posix(): path.read_bytes()
        for path in sorted(out.rglob("*"))
        if path.is_file() and path.suffix in (".html", ".json")
    }


def test_strings_from_results_are_escaped(tmp_path, make_run):
    root = tmp_path / "results"
    make_run(
        root,
        method="folder:<img src=x onerror=alert(1)>",
        display_name=HOSTILE,
        values={"img<1>": {"psnr": 20.0}},
        metrics=("psnr",),
        options={"note": "</pre><script>alert(2)</script>"},
        failed={"img&2": "<b>bad</b>"},
    )
    make_run(root, method="bicubic", values={"img<1>": {"psnr": 21.0}}, metrics=("psnr",))
    out = tmp_path / "site"
    build_site(root, out, tmp_path / "no-data")
    pages = _pages(out)
    html = {name: data.decode() for name, data in pages.items() if name.endswith(".html")}
    assert len(html) == 3  # index + two run pages
    for name, text in html.items():
        assert "<script>alert" not in text, name
        assert "<img src=x" not in text, name
        assert "<b>bad</b>" not in text, name
        assert len(re.findall(r"<script>", text)) <= 1, name  # only the page's own inline script
    index = html["index.html"]
    assert "Evil &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp;" in index
    run_page = next(text for name, text in html.items() if name.startswith("runs/") and "Evil" in text)
    assert "&lt;/pre&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in run_page
    assert "&lt;b&gt;bad&lt;/b&gt;" in run_page
    assert (out / "plots" / "tiny-syn-v1-quality-latency.png").stat().st_size > 1000  # "$" did not break mathtext


def test_index_shows_directions_best_reasons_and_provenance_links(results, tmp_path):
    out = tmp_path / "site"
    report = build_site(results, out, tmp_path / "no-data")
    index = (out / "index.html").read_text(encoding="utf-8")
    assert 'data-metric="psnr" data-higher="1"' in index and 'data-metric="lpips-alex" data-higher="0"' in index
    assert 'psnr <span class="dir">\u2191</span>' in index
    assert 'lpips-alex <span class="dir">\u2193</span>' in index
    assert index.count('class="best') >= 4
    assert "not scored: weights missing: alexnet.pth goes in TORCH_HOME/hub/checkpoints" in index
    assert "tiled</span> 512/32" in index and "patch-free" in index
    assert "a" * 64 in index and "bicubic-x4" in index  # suite hash and variant shown
    for row in report.tables[0].rows:
        assert f'href="runs/{row.run.key}.html"' in index
        page = (out / "runs" / f"{row.run.key}.html").read_text(encoding="utf-8")
        assert "git_sha" in page and "abc123" in page and "Options in effect" in page
        link = re.search(r'<a href="([^"]+/run\.json)">', page).group(1)
        assert (out / "runs" / link).resolve() == (row.run.folder / "run.json").resolve()
    data = json.loads((out / "data.json").read_text(encoding="utf-8"))
    assert [row["method"] for row in data["suites"][0]["rows"]] == ["Bicubic", "Lanczos", "Real-ESRGAN x4plus"]
    assert (out / "plots" / "tiny-syn-v1-pas-per-period.png").is_file()
    assert all(path.stat().st_mode & 0o777 == 0o644 for path in out.rglob("*") if path.is_file())  # readable site


def test_regeneration_is_byte_identical(results, tmp_path):
    first, second = tmp_path / "a" / "site", tmp_path / "b" / "site"
    build_site(results, first, tmp_path / "no-data")
    build_site(results, second, tmp_path / "no-data")
    assert _pages(first) == _pages(second)
    before = _pages(first)
    build_site(results, first, tmp_path / "no-data")  # in place: nothing changes
    assert _pages(first) == before


def test_stale_files_are_removed_and_foreign_files_kept(results, tmp_path, make_run):
    out = tmp_path / "site"
    report = build_site(results, out, tmp_path / "no-data")
    esrgan = next(row.run for row in report.tables[0].rows if row.run.label == "Real-ESRGAN x4plus")
    foreign = out / "runs" / "notes.txt"
    foreign.write_text("mine", encoding="utf-8")
    for path in esrgan.folder.iterdir():
        path.unlink()
    esrgan.folder.rmdir()
    second = build_site(results, out, tmp_path / "no-data")
    assert second.removed == [f"runs/{esrgan.key}.html"]
    assert not (out / "runs" / f"{esrgan.key}.html").exists()
    assert foreign.read_text(encoding="utf-8") == "mine"
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert "index.html" in manifest["files"] and f"runs/{esrgan.key}.html" not in manifest["files"]


def test_cli_writes_site_and_names_skipped_runs(results, tmp_path):
    broken = results / "tiny-syn@v1" / "broken" / "r0"
    broken.mkdir(parents=True)
    (broken / "run.json").write_text("[]", encoding="utf-8")
    out = tmp_path / "site"
    result = CliRunner().invoke(app, ["leaderboard", "--results", str(results), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "skipped tiny-syn@v1/broken/r0: fails schema validation" in result.output
    assert "1 suites, 3 runs, 1 skipped" in result.output
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "Skipped result folders" in index and "tiny-syn@v1/broken/r0" in index


def test_cli_errors_are_one_line(tmp_path):
    from op4ksr_bench.errors import Op4ksrError
    from op4ksr_bench.report.commands import leaderboard

    with pytest.raises(Op4ksrError, match="does not exist"):
        leaderboard(results=tmp_path / "nope", out=tmp_path / "site", data=None, crops=[])
    (tmp_path / "empty").mkdir()
    with pytest.raises(Op4ksrError, match="no valid run"):
        leaderboard(results=tmp_path / "empty", out=tmp_path / "site", data=None, crops=[])
    with pytest.raises(Op4ksrError, match="expected ID:X,Y,SIZE"):
        leaderboard(results=tmp_path / "empty", out=tmp_path / "site", data=None, crops=["img:1,2"])
