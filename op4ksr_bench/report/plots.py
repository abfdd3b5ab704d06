"""Leaderboard plots (matplotlib, Agg): quality vs latency per suite, and PAS per period per method.

Figures are written as PNG without metadata, so the same results and the same matplotlib give the same
bytes. The numbers behind every plot are also in ``data.json``.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from op4ksr_bench.report.aggregate import Row, SuiteTable

PANEL_COLUMNS = 4
MARKERS = ("o", "s", "^", "D", "v")


@dataclass(frozen=True)
class Plot:
    """A written figure: site-relative file, title and a text alternative."""

    file: str
    title: str
    alt: str


def _text(label: str) -> str:
    """A label from results, safe for matplotlib (``$`` would start mathtext)."""
    return label.replace("$", r"\$")


def _row_label(row: Row, limit: int = 48) -> str:
    inference = row.run.inference
    label = row.run.label if inference == "patch-free" else f"{row.run.label} ({inference})"
    return label if len(label) <= limit else label[: limit - 1] + "\u2026"


def _figure_png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def _margins(figure, width: float, height: float, *, bottom: float, top: float, **spacing: float) -> None:
    """Fixed margins in inches (tight_layout measures every tick label, which is slow and no more readable)."""
    figure.subplots_adjust(
        left=0.8 / width, right=1 - 0.25 / width, bottom=bottom / height, top=1 - top / height, **spacing
    )


def _log_seconds_axis(axis, seconds: list[float]) -> None:
    """A log axis with plain labels at 1-2-5 steps, padded so that close points do not sit on the frame."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_xscale("log")
    axis.set_xlim(min(seconds) / 2, max(seconds) * 2)
    axis.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.xaxis.set_minor_formatter(NullFormatter())


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as pyplot

    return pyplot


def quality_latency(table: SuiteTable) -> tuple[bytes, str] | None:
    """One panel per metric: mean value (y) against mean seconds per image (x, log scale), one point per run.

    Returns:
        PNG bytes and a text alternative, or None when no run has both a timing and a metric value.
    """
    columns = [
        column
        for column in table.columns
        if any(row.metrics[column.name].value is not None and row.seconds.value for row in table.rows)
    ]
    if not columns:
        return None
    pyplot = _pyplot()
    count = len(columns)
    panel_columns = min(PANEL_COLUMNS, count)
    panel_rows = math.ceil(count / panel_columns)
    width = max(6.0, 3.4 * panel_columns)
    legend_columns = max(1, round(width / 4.0))
    legend_rows = math.ceil(len(table.rows) / legend_columns)
    height = 2.8 * panel_rows + 0.3 * legend_rows + 0.6
    figure, axes = pyplot.subplots(panel_rows, panel_columns, figsize=(width, height), squeeze=False)
    colours = pyplot.get_cmap("tab10")
    handles = {}
    for index, column in enumerate(columns):
        axis = axes[index // panel_columns][index % panel_columns]
        for number, row in enumerate(table.rows):
            value, seconds = row.metrics[column.name].value, row.seconds.value
            if value is None or not seconds:
                continue
            marker = MARKERS[number // 10 % len(MARKERS)]
            handles[number] = axis.scatter(
                [seconds], [value], color=colours(number % 10), marker=marker, s=42, zorder=3, edgecolors="white"
            )
        _log_seconds_axis(axis, [row.seconds.value for row in table.rows if row.seconds.value])
        axis.set_xlabel("seconds per image (log)", fontsize=9)
        axis.set_title(_text(f"{column.name} ({column.direction})"), fontsize=10)
        axis.tick_params(labelsize=8)
        axis.grid(True, alpha=0.25)
    for index in range(count, panel_rows * panel_columns):
        axes[index // panel_columns][index % panel_columns].set_visible(False)
    labels = [_text(_row_label(table.rows[number])) for number in sorted(handles)]
    figure.legend(
        [handles[number] for number in sorted(handles)], labels, loc="lower center",
        ncol=min(legend_columns, len(labels)), fontsize=8, frameon=False,
    )  # fmt: skip
    figure.suptitle(_text(f"{table.name} v{table.version}: quality vs latency"), fontsize=12)
    _margins(figure, width, height, bottom=0.3 * legend_rows + 0.75, top=0.75, hspace=0.55, wspace=0.35)
    data = _figure_png(figure)
    pyplot.close(figure)
    alt = f"Quality against seconds per image for {len(table.rows)} runs on {table.name}, one panel per metric: " + (
        ", ".join(column.name for column in columns)
    )
    return data, alt


def pas_per_period(table: SuiteTable) -> tuple[bytes, str] | None:
    """Grouped bars: the mean PAS at each spatial period (px), one bar per run.

    Returns:
        PNG bytes and a text alternative, or None when no run recorded per-period PAS values.
    """
    periods = sorted({period for row in table.rows for period in row.periods})
    rows = [row for row in table.rows if row.periods]
    if not periods:
        return None
    pyplot = _pyplot()
    width = max(6.0, 0.5 * len(periods) * len(rows) + 2.0)
    legend_columns = max(1, round(width / 4.0))
    legend_rows = math.ceil(len(rows) / legend_columns)
    height = 3.4 + 0.3 * legend_rows
    figure, axis = pyplot.subplots(figsize=(width, height))
    colours = pyplot.get_cmap("tab10")
    bar_width = 0.8 / len(rows)
    for number, row in enumerate(rows):
        positions = [index + (number - (len(rows) - 1) / 2) * bar_width for index in range(len(periods))]
        values = [row.periods.get(period, math.nan) for period in periods]
        axis.bar(positions, values, width=bar_width, color=colours(number % 10), label=_text(_row_label(row)))
    axis.set_xticks(range(len(periods)), [f"{period} px" for period in periods])
    axis.set_xlabel("period", fontsize=9)
    direction = next((c.direction for c in table.columns if c.name == "pas"), "")
    axis.set_ylabel(f"PAS ({direction})" if direction else "PAS", fontsize=9)
    axis.tick_params(labelsize=8)
    axis.grid(True, axis="y", alpha=0.25)
    axis.set_title(_text(f"{table.name} v{table.version}: periodic artifact score per period"), fontsize=11)
    figure.legend(loc="lower center", ncol=min(legend_columns, len(rows)), fontsize=8, frameon=False)
    _margins(figure, width, height, bottom=0.3 * legend_rows + 0.65, top=0.45)
    data = _figure_png(figure)
    pyplot.close(figure)
    alt = f"PAS per period ({', '.join(str(p) for p in periods)} px) for {len(rows)} runs on {table.name}"
    return data, alt
