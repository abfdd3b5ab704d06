"""Row selection, the image-set rule, intervals, ties, dominant periods and local paths on the leaderboard."""

from __future__ import annotations

import json
from pathlib import Path

from op4ksr_bench.report.aggregate import build_tables, table_data
from op4ksr_bench.report.runs import load_runs
from op4ksr_bench.report.site import build_site
from op4ksr_bench.stats import bootstrap_ci


def _edit(folder: Path, **changes) -> None:
    path = folder / "run.json"
    record = json.loads(path.read_text())
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(record.get(key), dict):
            record[key].update(value)
        else:
            record[key] = value
    path.write_text(json.dumps(record))


def _values(psnrs: list[float]) -> dict[str, dict[str, float]]:
    return {f"img{index}": {"psnr": value} for index, value in enumerate(psnrs)}


def test_one_row_per_configured_method_from_its_most_complete_run(tmp_path, make_run):
    root = tmp_path / "results"
    make_run(root, method="bicubic", values=_values([20.0, 21.0]), metrics=("psnr",), run_id="r-old")
    big = make_run(root, method="bicubic", values=_values([20.0, 21.0, 22.0]), metrics=("psnr",), run_id="r-big")
    late = make_run(root, method="bicubic", values=_values([25.0, 26.0]), metrics=("psnr",), run_id="r-late")
    _edit(late, started_at="2026-02-01T00:00:00Z")
    make_run(root, method="bicubic", values=_values([19.0]), metrics=("psnr",), options={"a": -0.75}, run_id="r-a")
    (table,) = build_tables(load_runs(root)[0])
    shown = [(row.run.path.split("/")[-1], row.images) for row in table.rows]
    assert shown == [("r-big", "3 of 3"), ("r-a", "1 of 3")]  # a = -0.75 is another configured method
    assert [row.run.path.split("/")[-1] for row in table.others] == ["r-late", "r-old"]  # newest first
    _edit(big, started_at="2025-12-01T00:00:00Z")
    (root / "tiny-syn@v1" / "bicubic" / "r-big" / "samples.jsonl").write_text(
        (root / "tiny-syn@v1" / "bicubic" / "r-late" / "samples.jsonl").read_text()
    )  # now 2 images each: the newest of the most complete runs wins
    (table,) = build_tables(load_runs(root)[0])
    assert table.rows[0].run.path.endswith("r-late")
    data = table_data([table], [])["suites"][0]
    assert [other["run"].split("/")[-1] for other in data["other_runs"]] == ["r-old", "r-big"]


def test_a_partial_run_is_never_starred_over_complete_ones(tmp_path, make_run):
    root = tmp_path / "results"
    for method, values in (("nearest", [29.15]), ("bicubic", [29.41, 20.97]), ("lanczos", [29.40, 20.95])):
        folder = make_run(root, method=method, values=_values(values), metrics=("psnr",))
        _edit(folder, suite={"count": 7})
    (table,) = build_tables(load_runs(root)[0])
    rows = {row.run.label: row for row in table.rows}
    assert [row.run.label for row in table.rows] == ["bicubic", "lanczos", "nearest"]  # partial rows last
    assert rows["nearest"].images == "1 of 7" and not rows["nearest"].ranked
    assert not rows["nearest"].metrics["psnr"].best and not rows["nearest"].metrics["psnr"].tied
    assert rows["bicubic"].metrics["psnr"].best and rows["lanczos"].metrics["psnr"].tied  # n = 2: never significant
    assert "largest image set any run scored (2 of 7: img0, img1), scored by 2 of 3 runs" in table.ranking


def test_full_suite_runs_rank_and_wilcoxon_separates_a_consistent_difference(tmp_path, make_run):
    root = tmp_path / "results"
    base = [24.0, 25.5, 23.1, 26.2, 22.8, 25.0, 24.4]
    make_run(root, method="a", values=_values(base), metrics=("psnr",))
    make_run(root, method="b", values=_values([v - 0.5 - 0.01 * i for i, v in enumerate(base)]), metrics=("psnr",))
    make_run(root, method="c", values=_values([v + (0.2 if i % 2 else -0.2) for i, v in enumerate(base)]),
             metrics=("psnr",))  # fmt: skip
    (table,) = build_tables(load_runs(root)[0])
    cells = {row.run.label: row.metrics["psnr"] for row in table.rows}
    assert table.ranking == "ranked on the full suite (7 images), scored by 3 of 3 runs"
    best = max(cells, key=lambda label: cells[label].value)
    assert cells[best].best and best in ("a", "c")
    assert cells["b"].best is False and cells["b"].tied is False and "significantly worse" in cells["b"].note
    other = "c" if best == "a" else "a"
    assert cells[other].tied and "Wilcoxon p=" in cells[other].note
    assert cells["a"].n == 7 and cells["a"].ci == tuple(bootstrap_ci(base))


def test_intervals_of_old_run_files_come_from_the_samples(tmp_path, make_run):
    root = tmp_path / "results"
    folder = make_run(root, method="a", values=_values([20.0, 22.5, 21.0]), metrics=("psnr",))
    record = json.loads((folder / "run.json").read_text())
    del record["summary"]["psnr"]["ci95"]
    (folder / "run.json").write_text(json.dumps(record))
    (table,) = build_tables(load_runs(root)[0])
    cell = table.rows[0].metrics["psnr"]
    assert cell.ci == tuple(bootstrap_ci([20.0, 22.5, 21.0])) and cell.n == 3 and "95 % CI [" in cell.note
    out = tmp_path / "site"
    build_site(root, out, tmp_path / "no-data")
    index = (out / "index.html").read_text()
    assert f'<small class="ci">{cell.ci_text} n=3</small>' in index
    assert json.loads((out / "data.json").read_text())["suites"][0]["rows"][0]["ci95"]["psnr"] == list(cell.ci)


def test_dominant_period_is_a_mode_and_scoring_time_is_shown(tmp_path, make_run):
    root = tmp_path / "results"
    values = {f"img{i}": {"psnr": 20.0 + i, "pas": 0.1, "pas.period": period} for i, period in enumerate([32, 16, 32])}
    folder = make_run(root, method="a", values=values, metrics=("psnr", "pas"))
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    for index, sample in enumerate(samples):
        sample["score_seconds"] = 1.0 + index
    (folder / "samples.jsonl").write_text("".join(json.dumps(sample) + "\n" for sample in samples))
    record = json.loads((folder / "run.json").read_text())
    record["summary"]["pas.period"] = {"mean": 26.67, "median": 32.0, "std": 7.5, "count": 3}  # as old files hold
    (folder / "run.json").write_text(json.dumps(record))
    out = tmp_path / "site"
    build_site(root, out, tmp_path / "no-data")
    page = next((out / "runs").glob("*.html")).read_text()
    assert "most frequent: 32.00 (2 of 3 images)" in page and "26.67" not in page
    assert "2.000 s per image (mean over 3 images" in page


def test_no_local_paths_on_the_site(tmp_path, make_run):
    root = tmp_path / "results"
    folder = make_run(
        root,
        method="esrgan",
        values=_values([20.0]),
        metrics=("psnr",),
        options={"weights": "/home/someone/checkpoints/nano"},
        failed={"img9": f"crash: see {tmp_path}/results/tiny-syn@v1/x/command.log and /var/tmp/job/err.txt"},
    )
    _edit(folder, method={"spec": "spandrel:/root/models/4x_model.pth"})
    make_run(root, method="bicubic", values=_values([21.0]), metrics=("psnr",))
    out = tmp_path / "site"
    build_site(root, out, tmp_path / "no-data")
    written = {path: path.read_text() for path in out.rglob("*") if path.suffix in (".html", ".json")}
    for path, text in written.items():
        for fragment in ("/root/", "/home/someone", "/var/tmp", str(tmp_path)):
            assert fragment not in text, (path, fragment)
    index = written[out / "index.html"]
    assert "spandrel:4x_model.pth" in index
    page = next(text for path, text in written.items() if path.parent.name == "runs" and "4x_model" in text)
    assert "tiny-syn@v1/x/command.log" in page and "err.txt" in page and "nano" in page
    assert "/root/models/4x_model.pth" in (folder / "run.json").read_text()  # the full path stays in run.json


def test_folder_methods_with_one_name_in_two_places_are_two_rows(tmp_path, make_run):
    root = tmp_path / "results"
    first = make_run(root, method="folder_out", values=_values([20.0]), metrics=("psnr",), run_id="r1")
    second = make_run(root, method="folder_out", values=_values([21.0]), metrics=("psnr",), run_id="r2")
    _edit(first, method={"spec": "folder:/data/a/out"})
    _edit(second, method={"spec": "folder:/data/b/out"})
    (table,) = build_tables(load_runs(root)[0])
    assert len(table.rows) == 2 and table.others == ()


def test_a_two_sided_metric_is_ranked_by_distance_to_its_ideal(tmp_path, make_run):
    root = tmp_path / "results"
    seams = {"tiled": [0.9, 1.1], "untiled": [0.01, -0.02], "smoothed": [-0.6, -0.5]}
    for method, values in seams.items():
        make_run(root, method=method, values={f"img{i}": {"seam": v} for i, v in enumerate(values)},
                 metrics=("seam",))  # fmt: skip
    (table,) = build_tables(load_runs(root)[0])
    (column,) = table.columns
    assert column.ideal == 0.0 and "closer to 0" in column.direction
    rows = {row.run.label: row.metrics["seam"] for row in table.rows}
    assert rows["untiled"].best  # not "smoothed", whose mean is the lowest
    assert not rows["smoothed"].best and not rows["tiled"].best
