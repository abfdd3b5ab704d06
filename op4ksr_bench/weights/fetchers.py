"""Fetchers that obtain weight files from package registries by conversion: BasicSR's pristine NIQE parameters
(PyPI sdist ``basicsr``) written as pyiqa's MATLAB file. The converted methods' fetchers live in their modules."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import tarfile
from pathlib import Path

from op4ksr_bench import paths
from op4ksr_bench.atomic import atomic_write_bytes
from op4ksr_bench.errors import Op4ksrError

logger = logging.getLogger(__name__)

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
