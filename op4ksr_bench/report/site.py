"""Render the static leaderboard site: pages from jinja2 templates (package data), plots, crops, JSON.

Site layout (every path relative to the output folder)::

    index.html                         one sortable table per suite, plots, links to comparisons
    runs/<run>.html                    provenance of one run (environment, options, card, metrics, samples)
    compare/<suite>/<image>.html       the same crops from every method, LR and HR, and a before/after slider
    plots/<suite>-*.png                quality vs latency; PAS per period
    crops/<suite>/<image>/...          cropped PNGs (never full-size outputs) and a JPEG thumbnail per image
    data.json                          the tables as data
    crops.json                         every crop box and file, with the sha256 of the image it was cut from
    manifest.json                      the files this generator wrote (stale ones from a previous run are removed)

Pages are a pure function of the result files and ``crops.json``: no clock, sorted iteration, autoescaped.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from op4ksr_bench.atomic import atomic_write_bytes
from op4ksr_bench.licences import card_is_non_commercial
from op4ksr_bench.report import plots as plotting
from op4ksr_bench.report.aggregate import (
    PERIOD_KEY,
    Row,
    SuiteTable,
    build_tables,
    format_bytes,
    format_value,
    interval,
    table_data,
)
from op4ksr_bench.report.compare import (
    SITE_FILE_MODE,
    THUMBNAIL_SIDE,
    CropRequest,
    build_crops,
    per_image_note,
    tile_reason,
)
from op4ksr_bench.report.runs import LoadedRun, SkippedRun, load_runs, slugify
from op4ksr_bench.safepaths import site_link

logger = logging.getLogger(__name__)

SITE_SCHEMA = "op4ksr-bench/site@1"
STANDARD_RUN_KEYS = {
    "schema", "run_id", "suite", "method", "metrics", "environment", "seed", "started_at", "wall_seconds", "counts",
    "summary", "skipped_metrics", "status", "process",
}  # fmt: skip


@dataclass
class SiteReport:
    """What a generation produced, for the command to print."""

    out: Path
    tables: list[SuiteTable]
    skipped: list[SkippedRun]
    written: set[str] = field(default_factory=set)
    removed: list[str] = field(default_factory=list)
    data_problems: dict[str, str] = field(default_factory=dict)


def _pretty(value: Any, skip: tuple[str, ...] = ()) -> str:
    """A mapping as ``key: value`` lines (values as compact JSON); anything else as compact JSON."""

    def compact(item: Any) -> str:
        return json.dumps(item, sort_keys=True, ensure_ascii=False, default=str, separators=(", ", ": "))

    if isinstance(value, dict):
        return "\n".join(f"{key}: {compact(item)}" for key, item in sorted(value.items()) if key not in skip)
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return "\n".join(compact(item) for item in value)
    return compact(value)


def environment():
    """The jinja2 environment: templates from package data, autoescaping on, undefined names are errors."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("op4ksr_bench.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals.update(pretty=_pretty, fmt=format_value, bytes=format_bytes, nc=card_is_non_commercial)
    return env


class _Writer:
    """Writes site files (only when their bytes change) and remembers every path it wrote."""

    def __init__(self, out: Path, written: set[str]) -> None:
        self.out = out
        self.written = written

    def bytes(self, relative: str, data: bytes) -> None:
        path = self.out / relative
        if not path.is_file() or path.read_bytes() != data:
            atomic_write_bytes(path, data)
            path.chmod(SITE_FILE_MODE)  # atomic writes create 0600 temporaries; a site is for reading
        self.written.add(relative)

    def text(self, relative: str, text: str) -> None:
        self.bytes(relative, text.encode("utf-8"))

    def json(self, relative: str, obj: Any) -> None:
        self.text(relative, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n")


def _footnotes(table: SuiteTable) -> list[str]:
    notes: list[str] = []
    for row in table.rows:
        for column in table.columns:
            cell = row.metrics[column.name]
            if cell.value is None and cell.note not in notes:
                notes.append(cell.note)
    return notes


def _comparison_views(table: SuiteTable, suite_record: dict[str, Any]) -> list[dict[str, Any]]:
    """View models of the comparison pages of one suite, from its ``crops.json`` record."""
    views = []
    runs = {row.run.path: row.run for row in table.rows}
    for image_id, record in sorted(suite_record.get("images", {}).items()):
        slug = slugify(image_id)
        thumbnail = record.get("thumbnail") or {}
        crops = []
        for crop in record["crops"]:
            tiles = []
            for source, label in (("lr", "LR (input)"), ("hr", "HR (ground truth)")):
                file = crop["files"].get(source, {}).get("file")
                if file or source == "lr" or record.get("has_hr") is not False:
                    reason = "" if file else tile_reason(None, image_id, source, record)
                    tiles.append({"source": source, "label": label, "file": file, "reason": reason, "note": ""})
            for path, run in runs.items():
                file = crop["files"].get(path, {}).get("file")
                label = run.label if run.inference == "patch-free" else f"{run.label} ({run.inference})"
                tiles.append(
                    {
                        "source": path,
                        "label": label,
                        "file": file,
                        "reason": "" if file else tile_reason(run, image_id, path, record),
                        "note": per_image_note(run, image_id, table),
                    }
                )
            with_files = [tile for tile in tiles if tile["file"]]
            before = next((i for i, tile in enumerate(with_files) if tile["source"] == "lr"), 0)
            after = next((i for i, tile in enumerate(with_files) if tile["source"] not in ("lr", "hr")), None)
            if after is None:
                after = len(with_files) - 1
            crops.append({**crop, "tiles": tiles, "before": before, "after": after})
        views.append(
            {
                "id": image_id,
                "slug": slug,
                "page": f"compare/{table.key}/{slug}.html",
                "thumbnail": thumbnail.get("file"),
                "width": record["width"],
                "height": record["height"],
                "lr_width": record["lr_width"],
                "lr_height": record["lr_height"],
                "crops": crops,
            }
        )
    return views


def _write_plots(table: SuiteTable, writer: _Writer) -> list[plotting.Plot]:
    made = []
    for suffix, title, function in (
        ("quality-latency", "Quality vs latency", plotting.quality_latency),
        ("pas-per-period", "Periodic artifact score per period", plotting.pas_per_period),
    ):
        try:
            result = function(table)
        except Exception as error:  # noqa: BLE001 - a plot that cannot be drawn never stops the site
            logger.warning("%s: %s plot skipped (%s: %s)", table.key, suffix, type(error).__name__, error)
            continue
        if result is None:
            continue
        data, alt = result
        relative = f"plots/{table.key}-{suffix}.png"
        writer.bytes(relative, data)
        made.append(plotting.Plot(file=relative, title=title, alt=alt))
    return made


def metric_rows(row: Row) -> list[dict[str, Any]]:
    """The run page's metric table: per metric its record, summary, 95 % interval and image count."""
    run = row.run
    rows = []
    for name, meta in sorted(run.run["metrics"].items()):
        summary = run.run["summary"].get(name) or {}
        ci = interval(summary.get("ci95"), run, name) if summary.get("mean") is not None else None
        rows.append({"name": name, "meta": meta, "summary": summary, "ci": ci})
    return rows


def detail_rows(run: LoadedRun) -> list[dict[str, Any]]:
    """The run page's detail values (``pas.p16``, ``pas.period``, ...): a dominant period as its most frequent
    value with its count (from the samples, whatever the summary holds), everything else as a mean."""
    from op4ksr_bench.results import is_categorical
    from op4ksr_bench.stats import finite, mode

    rows = []
    for key, summary in sorted(run.run["summary"].items()):
        if not isinstance(summary, dict) or not ("." in key or PERIOD_KEY.match(key)):
            continue
        if is_categorical(key):
            values = [(sample.get("metrics") or {}).get(key) for sample in run.ok_samples]
            found, count = mode(values), len(finite(values))
            text = f"{format_value(found[0])} ({found[1]} of {count} images)" if found else "-"
            rows.append({"name": key, "mode": text, "count": count})
        else:
            rows.append({"name": key, "summary": summary, "ci": interval(summary.get("ci95"), run, key)})
    return rows


def _run_files(run: LoadedRun, out: Path) -> dict[str, str]:
    """Links from a run page (in ``runs/``) to the run's own result files."""
    base = Path(os.path.relpath(run.folder, out / "runs")).as_posix()
    return {"run": site_link(f"{base}/run.json"), "samples": site_link(f"{base}/samples.jsonl")}


def _remove_stale(out: Path, written: set[str]) -> list[str]:
    """Delete files a previous generation listed in ``manifest.json`` that this one did not write."""
    try:
        previous = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []
    if previous.get("schema") != SITE_SCHEMA:
        return []
    removed = []
    for relative in previous.get("files", []):
        path = (out / relative).resolve()
        if relative in written or out.resolve() not in path.parents or not path.is_file():
            continue
        path.unlink()
        removed.append(relative)
        for parent in path.parents:
            if parent == out.resolve() or any(parent.iterdir()):
                break
            parent.rmdir()
    return removed


def build_site(
    results: Path, out: Path, data_dir: Path, requests: list[CropRequest] | tuple = (), crop_size: int = 128
) -> SiteReport:
    """Read every run under ``results`` and write the leaderboard site to ``out``.

    Args:
        results: Results folder (``<suite>@v<version>/<method>/<run-id>/``).
        out: Site folder (created if missing). May contain ``results`` itself.
        data_dir: Data folder with the built suites, for LR/HR crops (comparisons degrade gracefully without it).
        requests: User-given comparison crops.
        crop_size: Side of the automatic crop in output pixels.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs, skipped = load_runs(results)
    tables = build_tables(runs)
    report = SiteReport(out=out, tables=tables, skipped=skipped)
    writer = _Writer(out, report.written)
    crops, report.data_problems = build_crops(tables, data_dir, out, list(requests), crop_size, report.written)
    env = environment()
    nav = [{"key": table.key, "name": table.name, "version": table.version} for table in tables]
    plots, comparisons = {}, {}
    for table in tables:
        suite_record = crops["suites"][table.key]
        plots[table.key] = _write_plots(table, writer)
        comparisons[table.key] = _comparison_views(table, suite_record)
    index = env.get_template("index.html").render(
        root="",
        nav=nav,
        tables=tables,
        skipped=skipped,
        plots=plots,
        comparisons=comparisons,
        footnotes={table.key: _footnotes(table) for table in tables},
    )
    writer.text("index.html", index)
    run_template = env.get_template("run.html")
    compare_template = env.get_template("compare.html")
    for table in tables:
        views = comparisons[table.key]
        pages = {view["id"]: f"../{view['page']}" for view in views}
        for row, shown in [*((row, True) for row in table.rows), *((row, False) for row in table.others)]:
            run = row.run
            html = run_template.render(
                root="../", nav=nav, table=table, row=row, shown=shown, run=run, files=_run_files(run, out),
                pages=pages, standard_keys=STANDARD_RUN_KEYS, metric_rows=metric_rows(row), details=detail_rows(run),
                method_extra={k: v for k, v in run.run["method"].items() if k not in ("card", "options")},
            )  # fmt: skip
            writer.text(f"runs/{run.key}.html", html)
        for position, view in enumerate(views):
            width, height = view["lr_width"], view["lr_height"]
            factor = THUMBNAIL_SIDE / max(width, height)  # shown at this size whatever the LR size
            neighbours = {
                name: {"id": views[index]["id"], "file": f"{views[index]['slug']}.html"}
                for name, index in (("previous", position - 1), ("next", position + 1))
                if 0 <= index < len(views)
            }
            html = compare_template.render(
                root="../../", nav=nav, table=table, image=_relative(view, "../../"), position=position + 1,
                total=len(views), previous=neighbours.get("previous"), next=neighbours.get("next"),
                thumb_width=round(width * factor), thumb_height=round(height * factor),
            )  # fmt: skip
            writer.text(view["page"], html)
    writer.json("data.json", table_data(tables, skipped))
    writer.json("crops.json", crops)
    report.removed = _remove_stale(out, report.written | {"manifest.json"})
    writer.json("manifest.json", {"schema": SITE_SCHEMA, "files": sorted(report.written)})
    return report


def _relative(view: dict[str, Any], root: str) -> dict[str, Any]:
    """A comparison view with its file links made relative to a page ``root`` levels down."""
    crops = []
    for crop in view["crops"]:
        tiles = [{**tile, "file": root + tile["file"] if tile["file"] else None} for tile in crop["tiles"]]
        crops.append({**crop, "tiles": tiles})
    thumbnail = root + view["thumbnail"] if view["thumbnail"] else None
    return {**view, "crops": crops, "thumbnail": thumbnail}
