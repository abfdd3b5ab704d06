"""Command bodies of ``op4ksr-bench weights``: ``list``, ``verify``, ``fetch`` and ``import``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from op4ksr_bench.errors import Op4ksrError, UsageError
from op4ksr_bench.weights import (
    WeightsRejectedError,
    entries,
    entry,
    import_file,
    is_present,
    missing_message,
    verify,
    weight_path,
)


def used_by(name: str) -> list[str]:
    """The registered metrics and methods that need catalogue entry ``name`` (from their own declarations)."""
    from op4ksr_bench.methods import METHODS
    from op4ksr_bench.metrics import metrics_using

    methods = []
    for method_name in METHODS.names():
        try:
            card = METHODS.get(method_name).card
        except Exception:  # noqa: BLE001 - a method module that cannot be imported here uses nothing listable
            continue
        if any(reference.name == name for reference in card.weights):
            methods.append(method_name)
    return [*metrics_using(name), *methods]


def cli_list() -> None:
    """Print every entry: presence, size, sha256, destination, licence and source."""
    for item in entries():
        present = "present" if is_present(item.name) else "MISSING"
        size = f"{item.size:,} B" if item.size else "size ?"
        digest = item.sha256 or (f"prefix {item.sha256_prefix}" if item.sha256_prefix else "sha256 ?")
        licence = item.licence + (" (non-commercial)" if item.non_commercial else "")
        print(f"{item.name:<22} {present:<8} {size:>16}  {digest}")
        print(f"    -> {weight_path(item.name)}")
        print(f"    used by: {', '.join(used_by(item.name)) or '-'}; licence: {licence}")
        print(
            f"    source: {item.source}"
            + (f"; fetch: op4ksr-bench weights fetch {item.name}" if item.fetcher is not None else "")
        )


def cli_verify() -> None:
    """Re-hash every present file; exit 1 naming each altered one."""
    altered = []
    for item in entries():
        if not is_present(item.name):
            print(f"{item.name:<22} missing")
            continue
        ok, detail = verify(item.name)
        print(f"{item.name:<22} {'ok' if ok else 'ALTERED'}: {detail}")
        if not ok:
            altered.append(item.name)
    if altered:
        raise Op4ksrError(f"altered weight files: {', '.join(altered)}; delete them and fetch or import them again")


def cli_fetch(names: Sequence[str]) -> None:
    """Fetch the named entries (default: every entry with a fetcher) from the reachable registries."""
    targets = list(names) or [item.name for item in entries() if item.fetcher is not None]
    for name in targets:
        item = entry(name)
        if item.fetcher is None:
            raise Op4ksrError(f"{name} cannot be fetched here: {missing_message(name)}")
        if is_present(name) and verify(name)[0]:
            print(f"{name}: already present at {weight_path(name)}")
            continue
        item.fetcher(weight_path(name))
        ok, detail = verify(name)
        if not ok:
            raise Op4ksrError(f"{name}: fetched file failed verification ({detail})")
        print(f"{name}: fetched to {weight_path(name)} ({detail})")


def cli_import(folder: Path) -> None:
    """Import every catalogue file found in ``folder`` (by file name, at any depth; see the module docstring).

    Good files are imported even when others are refused; the refused ones are named in one line at the end.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or path.is_file():
            found.setdefault(path.name, path)
    imported, refused = 0, []
    for item in entries():
        source = found.get(Path(item.filename).name)
        if source is None:
            continue
        try:
            detail = import_file(item, source)
        except WeightsRejectedError as error:
            refused.append(str(error))
            continue
        print(f"{item.name}: {source} -> {weight_path(item.name)} ({detail})")
        imported += 1
    if refused:
        raise Op4ksrError(f"not imported: {'; '.join(refused)}" + (f" ({imported} other file(s) imported)"))
    if imported == 0:
        raise Op4ksrError(f"no catalogue file found in {folder}; see `op4ksr-bench weights list` for the file names")
