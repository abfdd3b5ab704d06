"""Turn loaded runs into leaderboard tables: one table per suite, one row per configured method, one column per
metric.

Everything here is a pure function of the result files: rows and columns come out in a fixed order, and
nothing depends on the clock or on the machine that renders the page (except whether a run that says it is
running still has a live process). A metric's direction (``higher_is_better``) is read from the metric metadata
each ``run.json`` records, nowhere else. Which run a row shows, the common image set rows are ranked on and the
(tied-)best marks are in :mod:`op4ksr_bench.report.ranking`; every mean carries its 95 % bootstrap interval
(:mod:`op4ksr_bench.stats`), read from ``run.json`` or, for files written without it, computed from
``samples.jsonl``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

from op4ksr_bench.licences import is_non_commercial
from op4ksr_bench.report import ranking
from op4ksr_bench.report.runs import LoadedRun, SkippedRun, slugify
from op4ksr_bench.safepaths import displayable
from op4ksr_bench.stats import bootstrap_ci

PERIOD_KEY = re.compile(r"^pas\.p(\d+)$")


def format_value(value: float | None) -> str:
    """A metric value with precision by magnitude (24.31, 4.931, 0.7123); ``-`` for no value."""
    if not displayable(value):  # None, NaN, infinities, absurd magnitudes, anything not a number
        return "-"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 10:
        return f"{value:.2f}"
    if magnitude >= 1:
        return f"{value:.3f}"
    return f"{value:.4f}"


def format_bytes(count: float | None) -> str:
    """Bytes as MiB/GiB (binary units); ``-`` for unknown."""
    if not displayable(count):
        return "-"
    if count >= 1024**3:
        return f"{count / 1024**3:.2f} GiB"
    return f"{count / 1024**2:.0f} MiB"


@dataclass(frozen=True)
class MetricColumn:
    """A metric column: direction and metadata from the runs' ``run.json`` metric records."""

    name: str
    higher_is_better: bool | None
    kind: str
    backend: str
    licence: str
    non_commercial: bool
    ideal: float | None = None  # two-sided metric: ranked by |value - ideal| (see Metric.ideal)

    @property
    def arrow(self) -> str:
        if self.ideal is not None:
            return "\u2192" + format_value(self.ideal)
        return "" if self.higher_is_better is None else "\u2191" if self.higher_is_better else "\u2193"

    @property
    def direction(self) -> str:
        if self.higher_is_better is None:
            return "direction unknown: no run computed it"
        if self.ideal is not None:
            return f"closer to {format_value(self.ideal)} is better (values on either side of it are worse)"
        return "higher is better" if self.higher_is_better else "lower is better"


@dataclass(frozen=True)
class Cell:
    """One table cell: the value (None shows ``-``), its text, a tooltip note, whether it is the best or tied with
    it, its 95 % interval and the number of images behind it."""

    value: float | None
    text: str
    note: str
    best: bool = False
    partial: bool = False
    tied: bool = False
    ci: tuple[float, float] | None = None
    n: int = 0

    @property
    def ci_text(self) -> str:
        """``[low, high]`` with the value's precision; empty without an interval."""
        return f"[{format_value(self.ci[0])}, {format_value(self.ci[1])}]" if self.ci else ""


@dataclass(frozen=True)
class Row:
    """One run in a suite table."""

    run: LoadedRun
    metrics: dict[str, Cell]
    seconds: Cell
    memory: Cell
    images: str
    periods: dict[int, float]
    ranked: bool = True
    score_seconds: Cell | None = None


@dataclass(frozen=True)
class SuiteTable:
    """All runs of one suite (name, version and hash), with columns and rows in display order."""

    key: str
    name: str
    variant: str
    version: str
    hash: str
    scale: int
    info: dict[str, Any]
    columns: tuple[MetricColumn, ...]
    rows: tuple[Row, ...]
    warnings: tuple[str, ...]
    others: tuple[Row, ...] = ()
    empty: str = ""
    empty_reasons: tuple[tuple[str, str], ...] = ()
    ranking: str = ""


def _columns(runs: list[LoadedRun], warnings: list[str]) -> tuple[MetricColumn, ...]:
    """Metric columns in display order: the registered metrics' ``display_order`` (presentation only; the facts
    of each column come from the runs' records), then every other metric alphabetically."""
    from op4ksr_bench.metrics import display_order

    order = display_order()

    def _column_order(name: str) -> tuple[int, str]:
        return (order.index(name), name) if name in order else (len(order), name)

    found: dict[str, MetricColumn] = {}
    for run in runs:
        for name, meta in run.run["metrics"].items():
            column = MetricColumn(
                name=name,
                higher_is_better=bool(meta["higher_is_better"]),
                kind=str(meta.get("kind", "")),
                backend=str(meta.get("backend", "")),
                licence=str(meta.get("licence", "")),
                non_commercial=bool(meta.get("non_commercial")) or is_non_commercial(meta.get("licence")),
                ideal=_ideal(meta.get("ideal")),
            )
            if name in found and found[name].higher_is_better != column.higher_is_better:
                warnings.append(f"runs disagree on the direction of {name}; using {found[name].direction}")
            found.setdefault(name, column)
    for run in runs:  # a metric every run skipped still gets its column, to show why it has no values
        for name in run.skipped_metrics:
            if name not in found:
                found[name] = MetricColumn(name, None, kind="", backend="", licence="", non_commercial=False)
    return tuple(found[name] for name in sorted(found, key=_column_order))


def _ideal(value: Any) -> float | None:
    """A metric record's ``ideal`` when it is a finite number (anything else: a one-sided metric)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _metric_cell(run: LoadedRun, name: str) -> Cell:
    """The mean of one metric over a run's images, or ``-`` with the reason there is no value."""
    ok = run.ok_samples
    failed = run.failed_samples
    if name in run.skipped_metrics:
        return Cell(None, "-", f"not scored: {run.skipped_metrics[name]}")
    if name not in run.run["metrics"]:
        return Cell(None, "-", "not scored: not among the metrics of this run")
    if run.note(f"summary.{name}.mean"):
        return Cell(None, "-", f"not shown: {run.note(f'summary.{name}.mean')}")
    summary = run.run["summary"].get(name) or {}
    mean = summary.get("mean")
    if mean is None or not math.isfinite(mean):
        if not ok and failed:
            return Cell(None, "-", f"no value: all {len(failed)} images failed ({failed[0].get('reason') or '?'})")
        reasons = sorted({str(s.get("reason")) for s in ok if s.get("reason") and s["metrics"].get(name) is None})
        why = "; ".join(reasons) if reasons else "the metric returned no value for any image"
        return Cell(None, "-", f"no value: {why}")
    count = int(summary.get("count") or 0)
    total = len(run.samples)
    ci = interval(summary.get("ci95"), run, name)
    note = f"mean over {count} images"
    if ci is not None:
        note += f"; 95 % CI [{format_value(ci[0])}, {format_value(ci[1])}]"
    if summary.get("median") is not None:
        note += f"; median {format_value(summary['median'])}, std {format_value(summary.get('std'))}"
    partial = count < total
    if partial:
        note += f"; {total - count} of {total} images have no value"
        if failed:
            note += f" ({len(failed)} failed: {failed[0].get('reason') or '?'})"
    return Cell(float(mean), format_value(mean), note, partial=partial, ci=ci, n=count)


def interval(stored: Any, run: LoadedRun, name: str) -> tuple[float, float] | None:
    """The recorded ``ci95`` when it is two finite numbers, else the interval computed from the samples."""
    if (
        isinstance(stored, list)
        and len(stored) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in stored)
    ):
        return float(stored[0]), float(stored[1])
    computed = bootstrap_ci(list(ranking.metric_values(run, name).values()))
    return (computed[0], computed[1]) if computed else None


def _score_seconds_cell(run: LoadedRun) -> Cell:
    """Mean scoring seconds per image (all metrics of the run, on the saved output) over the ``ok`` rows."""
    values = [
        float(s["score_seconds"])
        for s in run.ok_samples
        if isinstance(s.get("score_seconds"), int | float) and math.isfinite(s["score_seconds"])
    ]
    if not values:
        return Cell(None, "-", "no scoring time recorded")
    mean = math.fsum(values) / len(values)
    ci = bootstrap_ci(values)
    bounds = (ci[0], ci[1]) if ci else None
    return Cell(mean, format_value(mean), f"mean scoring seconds per image over {len(values)} images", ci=bounds,
                n=len(values))  # fmt: skip


def _seconds_cell(run: LoadedRun) -> Cell:
    values = [float(s["seconds"]) for s in run.ok_samples if isinstance(s.get("seconds"), int | float)]
    timing = run.run["method"].get("timing")
    if not values:
        if _dropped(run, "seconds"):
            return Cell(None, "-", f"not shown: {_dropped(run, 'seconds')}")
        if timing == "none":
            return Cell(None, "-", "not measured: the method's outputs were computed elsewhere")
        return Cell(None, "-", "no timing recorded")
    mean = sum(values) / len(values)
    how = " (amortised over the batch)" if timing == "amortised" else ""
    note = f"mean inference seconds per image over {len(values)} images{how}"
    ci = bootstrap_ci(values)
    bounds = (ci[0], ci[1]) if ci else None
    if bounds:
        note += f"; 95 % CI [{format_value(bounds[0])}, {format_value(bounds[1])}]"
    left_out = _dropped(run, "seconds")
    if left_out:
        note += f"; not shown: {left_out}"
    return Cell(mean, format_value(mean), note, ci=bounds, n=len(values))


def _dropped(run: LoadedRun, field: str) -> str | None:
    """The note of the first sample whose ``field`` could not be shown (NaN, infinite, not a number), if any."""
    return next(
        (note for key, note in run.notes.items() if key.startswith("samples.") and key.endswith(f".{field}")), None
    )


def _memory_cell(run: LoadedRun) -> Cell:
    values = [int(s["peak_memory_bytes"]) for s in run.samples if isinstance(s.get("peak_memory_bytes"), int | float)]
    if not values:
        return Cell(None, "-", f"not shown: {_dropped(run, 'peak_memory_bytes')}" if _dropped(run, "peak_memory_bytes")
                    else "no peak memory recorded")  # fmt: skip
    peak = max(values)
    kind = run.run["environment"].get("memory_kind")
    note = f"largest peak memory over {len(values)} images: {peak:,} bytes" + (f" ({kind})" if kind else "")
    note += f"; not shown: {_dropped(run, 'peak_memory_bytes')}" if _dropped(run, "peak_memory_bytes") else ""
    return Cell(float(peak), format_bytes(peak), note)


def _periods(run: LoadedRun) -> dict[int, float]:
    """Mean PAS per spatial period (px) from the run summary's ``pas.p<period>`` entries."""
    periods = {}
    for key, summary in run.run["summary"].items():
        match = PERIOD_KEY.match(key)
        if match and isinstance(summary, dict) and summary.get("mean") is not None:
            periods[int(match.group(1))] = float(summary["mean"])
    return dict(sorted(periods.items()))


def _mark_best(cells: list[Cell], higher_is_better: bool | None, ranked: list[bool] | None = None) -> list[Cell]:
    """Mark the best value among the ranked rows (all rows when ``ranked`` is None)."""
    eligible = [ranked is None or ranked[i] for i in range(len(cells))]
    values = [c.value for c, ok in zip(cells, eligible, strict=True) if ok and c.value is not None]
    if higher_is_better is None or len(set(values)) < 2:  # nothing to be best against: one value, or all equal
        return cells
    best = max(values) if higher_is_better else min(values)
    return [replace(c, best=ok and c.value == best) for c, ok in zip(cells, eligible, strict=True)]


def _rank_cells(
    cells: list[Cell], runs: list[LoadedRun], ranked: list[bool], images: ranking.ImageSet | None, column: MetricColumn
) -> list[Cell]:
    """Best and tied-best marks of one metric column (:func:`op4ksr_bench.report.ranking.rank_column`)."""
    values = [ranking.metric_values(run, column.name) if cell.value is not None else {} for run, cell in
              zip(runs, cells, strict=True)]  # fmt: skip
    marks = ranking.rank_column(values, ranked, images, column.higher_is_better, ideal=column.ideal)
    out = []
    for cell, mark, in_set in zip(cells, marks, ranked, strict=True):
        note = cell.note
        if cell.value is not None and not in_set:
            note += "; not ranked: this run did not score every image of the ranked set"
        elif mark.note:
            note += f"; {mark.note}"
        out.append(replace(cell, best=mark.best, tied=mark.tied, note=note))
    return out


def _empty_columns(
    columns: tuple[MetricColumn, ...], cells: dict[str, list[Cell]]
) -> tuple[list[str], str, tuple[tuple[str, str], ...]]:
    """Columns without a value in any row, one note naming them with their reasons, and ``(name, reasons)``."""
    empty = [column.name for column in columns if all(cell.value is None for cell in cells[column.name])]
    if not empty:
        return [], "", ()
    reasons = tuple((name, "; ".join(sorted({cell.note for cell in cells[name]}))) for name in empty)
    note = "No value in any run, so not shown as columns: " + "; ".join(f"{name} ({why})" for name, why in reasons)
    return empty, note, reasons


def suite_key(name: str, version: str) -> str:
    """File-name-safe id of a suite version (``4ksr-syn-v1``)."""
    return slugify(f"{name}-v{version}")


def build_tables(runs: list[LoadedRun]) -> list[SuiteTable]:
    """Group runs by suite (name, version, hash) and build one table each, sorted by suite then method label."""
    groups: dict[tuple[str, str, str], list[LoadedRun]] = {}
    for run in runs:
        suite = run.suite
        groups.setdefault((str(suite["name"]), str(suite["version"]), str(suite["hash"])), []).append(run)
    versions: dict[tuple[str, str], int] = {}
    for name, version, _ in groups:
        versions[(name, version)] = versions.get((name, version), 0) + 1
    tables = []
    for (name, version, suite_hash), members in sorted(groups.items()):
        warnings: list[str] = []
        key = suite_key(name, version)
        if versions[(name, version)] > 1:
            key += "-" + suite_hash[:8]
            warnings.append(
                f"other runs of {name} v{version} used a different suite hash; they are in a separate table "
                "because their numbers are not comparable"
            )
        tables.append(_suite_table(key, name, version, suite_hash, members, warnings))
    return tables


def _images_text(run: LoadedRun, size: int) -> str:
    """``2 of 7``: images scored of the suite's ``size`` images."""
    return f"{len(run.ok_samples)} of {size}"


def _suite_table(
    key: str, name: str, version: str, suite_hash: str, members: list[LoadedRun], warnings: list[str]
) -> SuiteTable:
    """One suite table: a row per configured method (ranked rows first), the other runs, the image-set rule."""
    shown, others = ranking.select_runs(members)
    images = ranking.reference_set(shown)
    shown.sort(key=lambda run: (not ranking.is_ranked(run, images), run.label.lower(), run.inference, run.path))
    ranked = [ranking.is_ranked(run, images) for run in shown]
    size = max(ranking.suite_size(run) for run in members)
    columns = _columns(members, warnings)
    metric_cells = {
        column.name: _rank_cells([_metric_cell(run, column.name) for run in shown], shown, ranked, images, column)
        for column in columns
    }
    empty, empty_note, empty_reasons = _empty_columns(columns, metric_cells)
    columns = tuple(column for column in columns if column.name not in empty)
    seconds = _mark_best([_seconds_cell(run) for run in shown], higher_is_better=False, ranked=ranked)
    memory = _mark_best([_memory_cell(run) for run in shown], higher_is_better=False, ranked=ranked)
    rows = [
        Row(
            run=run,
            metrics={column.name: metric_cells[column.name][index] for column in columns},
            seconds=seconds[index],
            memory=memory[index],
            images=_images_text(run, size),
            periods=_periods(run),
            ranked=ranked[index],
            score_seconds=_score_seconds_cell(run),
        )
        for index, run in enumerate(shown)
    ]
    other_rows = [
        Row(
            run=other,
            metrics={column.name: _metric_cell(other, column.name) for column in columns},
            seconds=_seconds_cell(other),
            memory=_memory_cell(other),
            images=_images_text(other, size),
            periods=_periods(other),
            ranked=False,
            score_seconds=_score_seconds_cell(other),
        )
        for run in shown
        for other in others[run.path]
    ]
    first = shown[0].suite
    info = {k: v for k, v in sorted(first.items()) if isinstance(v, str | int | float | bool)}
    return SuiteTable(
        key=key,
        name=name,
        variant=str(first.get("variant") or "-"),
        version=version,
        hash=suite_hash,
        scale=int(first["scale"]),
        info=info,
        columns=columns,
        rows=tuple(rows),
        warnings=tuple(warnings),
        others=tuple(other_rows),
        empty=empty_note,
        empty_reasons=empty_reasons,
        ranking=images.describe() if images else "no run scored an image: nothing is ranked",
    )


def table_data(tables: list[SuiteTable], skipped: list[SkippedRun]) -> dict[str, Any]:
    """The leaderboard as plain JSON-serialisable data (written as ``data.json`` beside the pages)."""
    suites = []
    for table in tables:
        rows = []
        for row in table.rows:
            rows.append(
                {
                    "run": row.run.path,
                    "method": row.run.label,
                    "spec": row.run.run["method"]["spec"],
                    "inference": row.run.inference,
                    "steps": row.run.card.get("steps"),
                    "licence": row.run.card.get("licence"),
                    "device": row.run.device,
                    "images": row.images,
                    "ranked": row.ranked,
                    "status": row.run.status,
                    "seconds_per_image": row.seconds.value,
                    "seconds_per_image_ci95": list(row.seconds.ci) if row.seconds.ci else None,
                    "peak_memory_bytes": row.memory.value,
                    "metrics": {name: cell.value for name, cell in row.metrics.items()},
                    "missing": {name: cell.note for name, cell in row.metrics.items() if cell.value is None},
                    "best": sorted(name for name, cell in row.metrics.items() if cell.best),
                    "tied_best": sorted(name for name, cell in row.metrics.items() if cell.tied),
                    "ci95": {name: list(cell.ci) for name, cell in row.metrics.items() if cell.ci is not None},
                    "n": {name: cell.n for name, cell in row.metrics.items() if cell.value is not None},
                    "pas_per_period": {str(period): value for period, value in row.periods.items()},
                }
            )
        suites.append(
            {
                "key": table.key,
                "name": table.name,
                "variant": table.variant,
                "version": table.version,
                "hash": table.hash,
                "scale": table.scale,
                "metrics": [
                    {"name": c.name, "higher_is_better": c.higher_is_better, "kind": c.kind} for c in table.columns
                ],
                "rows": rows,
                "ranking": table.ranking,
                "empty_columns": table.empty,
                "other_runs": [
                    {
                        "run": row.run.path,
                        "method": row.run.label,
                        "inference": row.run.inference,
                        "images": row.images,
                        "status": row.run.status,
                        "started_at": row.run.run.get("started_at"),
                    }
                    for row in table.others
                ],  # fmt: skip
                "warnings": list(table.warnings),
            }
        )
    return {
        "schema": "op4ksr-bench/leaderboard@1",
        "suites": suites,
        "skipped": [{"path": s.path, "reason": s.reason} for s in skipped],
    }
