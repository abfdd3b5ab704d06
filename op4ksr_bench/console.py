"""What the commands print: plain-text tables, the throughput of a loop, and the build's progress bars.

Every command prints through these, so a listing, a score table and a run's per-image line look alike. The
engine modules never print themselves; they are handed an ``echo`` and format their lines with
:func:`throughput`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def text_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns two spaces apart, a rule of dashes under the header, no trailing spaces."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    lines += [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)


def throughput(done: int, total: int, elapsed: float) -> str:
    """``12.5 img/min, ETA 40s``: the rate so far and the time the remaining ``total - done`` items would take."""
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = (total - done) / rate if rate > 0 else 0.0
    return f"{rate * 60:.1f} img/min, ETA {eta:.0f}s"


class RichProgress:
    """The builder's progress sink: one rich progress bar per step (done / total, rate, ETA)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = Console(stderr=True, soft_wrap=True)  # messages stay one line, whatever the width
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def start(self, description: str, total: int | None) -> Any:
        return self.progress.add_task(description, total=total)

    def advance(self, task: Any, amount: int = 1) -> None:
        self.progress.advance(task, amount)

    def log(self, text: str) -> None:
        self.progress.console.print(text)
