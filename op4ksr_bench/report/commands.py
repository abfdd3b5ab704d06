"""The ``op4ksr-bench leaderboard`` command: results folder in, static site out."""

from __future__ import annotations

from pathlib import Path

import typer

from op4ksr_bench.errors import Op4ksrError, UsageError
from op4ksr_bench.paths import data_dir, results_dir

DEFAULT_CROP_SIZE = 128


def leaderboard(
    *, results: Path | None, out: Path, data: Path | None, crops: list[str], crop_size: int = DEFAULT_CROP_SIZE
) -> None:
    """Write the leaderboard site for every run under ``results`` into ``out`` and print what was done.

    Args:
        results: Results folder [default: ``$OP4KSR_RESULTS`` or ``./results``].
        out: Site folder.
        data: Data folder with built suites (for LR/HR comparison crops).
        crops: Extra comparison crops, each ``ID:X,Y,SIZE`` in output pixels.
        crop_size: Side of the automatic comparison crop in output pixels (a multiple of the suite scale).
    """
    from op4ksr_bench.report.compare import CropRequest
    from op4ksr_bench.report.site import build_site

    results = Path(results) if results is not None else results_dir()
    if not results.is_dir():
        raise UsageError(f"results folder {results} does not exist; run `op4ksr-bench run` first or pass --results")
    if crop_size <= 0:
        raise UsageError(f"--crop-size {crop_size}: must be positive")
    requests = [CropRequest.parse(text) for text in crops]
    report = build_site(results, Path(out), Path(data) if data is not None else data_dir(), requests, crop_size)
    for skipped in report.skipped:
        typer.echo(f"skipped {skipped.path}: {skipped.reason}", err=True)
    for key, problem in sorted(report.data_problems.items()):
        typer.echo(f"{key}: {problem}", err=True)
    runs = sum(len(table.rows) for table in report.tables)
    if not runs:
        raise Op4ksrError(f"no valid run under {results} ({len(report.skipped)} skipped); nothing to rank")
    size = sum((report.out / relative).stat().st_size for relative in report.written)
    typer.echo(
        f"wrote {report.out / 'index.html'}: {len(report.tables)} suites, {runs} runs, {len(report.skipped)} skipped, "
        f"{len(report.written)} files ({size / 1e6:.1f} MB)"
        + (f", removed {len(report.removed)} stale files" if report.removed else "")
    )
