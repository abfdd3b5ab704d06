"""Command bodies of the methods area: ``op4ksr-bench ls methods``."""

from __future__ import annotations

import typer

from op4ksr_bench.console import text_table
from op4ksr_bench.methods import METHODS
from op4ksr_bench.methods.base import MethodCard


def weights_status(card: MethodCard) -> str:
    """``NAME, ... (present)``, ``missing: NAME, ...`` or ``-`` (no weights) for a card's catalogued weight files."""
    if not card.weights:
        return "-"
    from op4ksr_bench import weights as catalogue

    missing, unknown = [], []
    for reference in card.weights:
        if reference.name not in catalogue.CATALOGUE:
            unknown.append(reference.name)
        elif not catalogue.is_present(reference.name):
            missing.append(reference.name)
    if unknown and card.name == "op4ksr":
        return shipped_status(card)
    if unknown:
        return "not in the weights catalogue: " + ", ".join(unknown)
    if missing:
        return "missing: " + ", ".join(missing)
    return ", ".join(reference.name for reference in card.weights) + " (present)"


def shipped_status(card: MethodCard) -> str:
    """Where the OP4KSR nano weights come from: the checkpoint shipped in the repository, checked by sha256."""
    from op4ksr_bench.atomic import sha256_file
    from op4ksr_bench.methods.op4ksr import shipped_checkpoint

    folder = shipped_checkpoint()
    where = "shipped in the repository (reference_model/checkpoints/nano/); others: --opt weights=DIR"
    altered = []
    for reference in card.weights:
        path = folder / reference.name.split("/", 1)[1]
        if not path.is_file() or sha256_file(path) != reference.sha256:
            altered.append(path.relative_to(folder).as_posix())
    return f"{where}; missing or altered: {', '.join(altered)}" if altered else f"present, {where}"


def _row(card: MethodCard, weights: str) -> list[str]:
    layout = "patch-free" if card.patch_free else f"tiled {card.default_tile}/{card.default_overlap}"
    licence = card.licence if len(card.licence) <= 44 else card.licence[:43] + "…"
    return [card.name, card.family, licence, layout, str(card.steps), weights]


def method_rows() -> list[list[str]]:
    """One row per registered method and shipped external card: name, family, licence, layout, steps, weights."""
    rows = []
    for name in METHODS.names():
        try:
            card = METHODS.get(name).card
        except Exception as error:  # e.g. a method module that is not installed in this checkout
            rows.append([name, "?", "?", "?", "?", f"unavailable ({type(error).__name__}: {error})"])
            continue
        rows.append(_row(card, weights_status(card)))
    from op4ksr_bench.methods.external import ExternalCard, card_names, find_card

    for name in card_names():
        external = ExternalCard.load(find_card(name))
        rows.append(_row(external.method_card(), "own repository (--opt repo=PATH)"))
    return rows


def ls_methods() -> None:
    """Print the methods table and the parametrised families."""
    typer.echo(text_table(["name", "family", "licence", "layout", "steps", "weights"], method_rows()))
    typer.echo("")
    typer.echo("also: spandrel:PATH (ESRGAN/SwinIR/HAT/... weights file), folder:PATH (precomputed outputs by id),")
    typer.echo(
        "      external:CARD.yaml (your own card); any in-process method: --opt tile=N --opt overlap=M --opt blend=B"
    )
    typer.echo("      python:MODULE:CALLABLE or python:FILE.py:CALLABLE (your Python function; docs/api.md)")
