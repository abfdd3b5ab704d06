"""Fixtures for the methods tests: tiny real RRDBNet weights, in PyTorch and in ncnn form."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from op4ksr_bench.methods.ncnn_format import TAG_FLOAT16
from op4ksr_bench.methods.realesrgan import RrdbLayout

TINY_LAYOUT = RrdbLayout(in_channels=3, out_channels=3, features=8, growth=32, blocks=1)
"""spandrel's RRDBNet fixes the growth at 32; 8 features and 1 block keep the network tiny (21 convolutions)."""


def random_rrdb_state(layout: RrdbLayout, seed: int = 0) -> dict[str, np.ndarray]:
    """Random RRDBNet weights (fp16-representable, small enough to keep activations in range)."""
    rng = np.random.default_rng(seed)
    state = {}
    for key, out_channels, in_channels, _ in layout.convolutions():
        scale = 1.0 / np.sqrt(in_channels * 9)
        weight = rng.normal(0.0, scale, size=(out_channels, in_channels, 3, 3)).astype(np.float16)
        state[f"{key}.weight"] = weight
        state[f"{key}.bias"] = rng.normal(0.0, 0.01, size=out_channels).astype(np.float32)
    return state


def write_ncnn_rrdbnet(layout: RrdbLayout, state: dict[str, np.ndarray]) -> tuple[str, bytes]:
    """The ncnn ``.param`` text and ``.bin`` bytes of an RRDBNet with ``state`` (the x4 export's graph)."""
    layers: list[str] = []
    blobs: set[str] = set()
    counter = iter(range(1_000_000))

    def blob() -> str:
        name = f"b{next(counter)}"
        blobs.add(name)
        return name

    def add(kind: str, inputs: list[str], outputs: list[str], params: str = "") -> None:
        name = f"{kind}_{len(layers)}"
        line = f"{kind:<24} {name:<24} {len(inputs)} {len(outputs)} {' '.join(inputs + outputs)}"
        layers.append(f"{line} {params}".rstrip())

    def split(source: str, copies: int) -> list[str]:
        outputs = [blob() for _ in range(copies)]
        add("Split", [source], outputs)
        return outputs

    conv_index = iter(layout.convolutions())

    def conv(source: str, output: str | None = None) -> str:
        key, out_channels, in_channels, leaky = next(conv_index)
        target = output or blob()
        params = f"0={out_channels} 1=3 4=1 5=1 6={out_channels * in_channels * 9}"
        if leaky:
            params += " 9=2 -23310=1,2.000000e-01"
        add("Convolution", [source], [target], params)
        return target

    def concat(inputs: list[str]) -> str:
        output = blob()
        add("Concat", inputs, [output])
        return output

    def residual(branch: str, skip: str) -> str:
        output = blob()
        add("Eltwise", [branch, skip], [output], "0=1 -23301=2,2.000000e-01,1.000000e+00")
        return output

    def rdb(source: str) -> str:
        x = split(source, 6)
        x1 = split(conv(x[0]), 4)
        x2 = split(conv(concat([x[1], x1[0]])), 3)
        x3 = split(conv(concat([x[2], x1[1], x2[0]])), 2)
        x4 = conv(concat([x[3], x1[2], x2[1], x3[0]]))
        x5 = conv(concat([x[4], x1[3], x2[2], x3[1], x4]))
        return residual(x5, x[5])

    data = "data"
    blobs.add(data)
    add("Input", [], [data])
    first = split(conv(data), 2)
    trunk = first[0]
    for _ in range(layout.blocks):
        block_in = split(trunk, 2)
        out = block_in[0]
        for _ in range(3):
            out = rdb(out)
        trunk = residual(out, block_in[1])
    body = conv(trunk)
    summed = blob()
    add("BinaryOp", [first[1], body], [summed])  # op 0 (add) is ncnn's default, so the exports omit it
    up = blob()
    add("Interp", [summed], [up], "0=1 1=2.000000e+00 2=2.000000e+00")
    up = conv(up)
    up2 = blob()
    add("Interp", [up], [up2], "0=1 1=2.000000e+00 2=2.000000e+00")
    hr = conv(conv(up2))
    blobs.add("output")
    conv(hr, "output")
    param = "7767517\n" + f"{len(layers)} {len(blobs)}\n" + "\n".join(layers) + "\n"
    chunks = []
    for key, _, _, _ in layout.convolutions():
        weight = state[f"{key}.weight"].astype("<f2").tobytes()
        chunks += [struct.pack("<I", TAG_FLOAT16), weight, b"\0" * ((-len(weight)) % 4)]
        chunks.append(state[f"{key}.bias"].astype("<f4").tobytes())
    return param, b"".join(chunks)


@pytest.fixture
def tiny_rrdb():
    """``(layout, state, param_text, bin_bytes)`` of a tiny random RRDBNet."""
    state = random_rrdb_state(TINY_LAYOUT)
    param, data = write_ncnn_rrdbnet(TINY_LAYOUT, state)
    return TINY_LAYOUT, state, param, data


def ncnn_forward(param_path, bin_path, image: np.ndarray) -> np.ndarray:
    """Run an ncnn model on CPU in fp32 (no fp16/bf16 storage or arithmetic): ``[3, h, w]`` -> ``[3, H, W]``."""
    import ncnn

    net = ncnn.Net()
    for option in ("use_vulkan_compute", "use_fp16_storage", "use_fp16_arithmetic", "use_fp16_packed",
                   "use_bf16_storage"):  # fmt: skip
        setattr(net.opt, option, False)
    if net.load_param(str(param_path)) != 0 or net.load_model(str(bin_path)) != 0:
        raise RuntimeError(f"ncnn could not load {param_path} / {bin_path}")
    extractor = net.create_extractor()
    extractor.input("data", ncnn.Mat(np.ascontiguousarray(image, dtype=np.float32)))
    status, output = extractor.extract("output")
    if status != 0:
        raise RuntimeError(f"ncnn extract failed with {status}")
    return np.array(output)


@pytest.fixture
def run_ncnn():
    """The :func:`ncnn_forward` helper."""
    import ncnn  # noqa: F401  (pinned in requirements.lock: the reference check must run, never skip)

    return ncnn_forward


@pytest.fixture
def rrdb_tools():
    """``(random_rrdb_state, write_ncnn_rrdbnet, TINY_LAYOUT)`` for tests that build their own variants."""
    return random_rrdb_state, write_ncnn_rrdbnet, TINY_LAYOUT


def _format_param(value) -> str:
    if isinstance(value, tuple):
        return f"{len(value)}," + ",".join(f"{item:e}" for item in value)
    return f"{value:e}" if isinstance(value, float) else str(value)


def write_ncnn_graph(nodes, state: dict[str, np.ndarray], constants: dict[str, np.ndarray]) -> tuple[str, bytes]:
    """The ``.param`` text and ``.bin`` bytes of ``nodes`` (:class:`~op4ksr_bench.methods.ncnn_format.Node`).

    A ``Split`` is written after every node read by more than one later node, as ncnn's exporter does; the first
    node writes the blob ``data`` and the last the blob ``output``. ``state[name + ".weight"/".bias"]`` holds each
    convolution's fp16 kernel and fp32 bias, ``constants[name]`` each ``MemoryData``'s fp32 values.
    """
    readers: dict[str, int] = {}
    for node in nodes:
        for source in node.inputs:
            readers[source] = readers.get(source, 0) + 1
    lines, chunks, available = [], [], {}
    blob_count = 0
    for index, node in enumerate(nodes):
        inputs = [available[source].pop(0) for source in node.inputs]
        output = "data" if index == 0 else "output" if index == len(nodes) - 1 else f"{node.name}_out"
        params = " ".join(f"{key if not isinstance(value, tuple) else -23300 - key}={_format_param(value)}"
                          for key, value in node.params.items())  # fmt: skip
        lines.append(f"{node.type} {node.name} {len(inputs)} 1 {' '.join(inputs + [output])} {params}".rstrip())
        blob_count += 1
        copies = readers.get(node.name, 0)
        if copies > 1:
            outputs = [f"{node.name}_split{copy}" for copy in range(copies)]
            lines.append(f"Split {node.name}_split 1 {copies} {output} {' '.join(outputs)}")
            blob_count += copies
            available[node.name] = outputs
        else:
            available[node.name] = [output]
        if node.type == "MemoryData":
            chunks.append(constants[node.name].astype("<f4").tobytes())
        elif node.type == "Convolution":
            weight = state[f"{node.name}.weight"].astype("<f2").tobytes()
            chunks += [struct.pack("<I", TAG_FLOAT16), weight, b"\0" * ((-len(weight)) % 4)]
            chunks.append(state[f"{node.name}.bias"].astype("<f4").tobytes())
    param = f"7767517\n{len(lines)} {blob_count}\n" + "\n".join(lines) + "\n"
    return param, b"".join(chunks)


TINY_SPAN_CHANNELS = 8


def tiny_span_files(channels: int = TINY_SPAN_CHANNELS, seed: int = 0) -> tuple[str, bytes]:
    """A tiny SPAN x4 ncnn export with random weights (activations kept in range, output near [0, 1])."""
    from op4ksr_bench.methods.span import RGB_MEAN, span_graph

    rng = np.random.default_rng(seed)
    nodes = span_graph(channels)
    state = {}
    for node in nodes:
        if node.type != "Convolution":
            continue
        c_out, kernel, count = node.params[0], node.params[1], node.params[6]
        c_in = count // (c_out * kernel * kernel)
        scale = 1.0 / np.sqrt(c_in * kernel * kernel) / (255.0 if node.name == "conv_1" else 1.0)
        state[f"{node.name}.weight"] = rng.normal(0, scale, (c_out, c_in, kernel, kernel)).astype(np.float16)
        state[f"{node.name}.bias"] = rng.normal(0.5 if node.name == "upsampler.0" else 0.0, 0.01, c_out)
        state[f"{node.name}.bias"] = state[f"{node.name}.bias"].astype(np.float32)
    return write_ncnn_graph(nodes, state, {"mean": np.asarray(RGB_MEAN, dtype=np.float32)})


@pytest.fixture
def tiny_span():
    """``(param_text, bin_bytes)`` of a tiny random SPAN x4 export (8 channels)."""
    return tiny_span_files()


@pytest.fixture(scope="session")
def real_lr_image() -> np.ndarray:
    """A real photograph (the first of the built-in Debian catalogue), 4x box-downscaled: ``[3, h, w]`` in [0, 1].

    Downloads the package once into the shared downloads folder, as ``build-dataset`` does.
    """
    from PIL import Image

    from op4ksr_bench.data.debian import CATALOGUE, DebianSource
    from op4ksr_bench.data.sources import load_source_image

    item = DebianSource(catalogue=CATALOGUE[:1]).list_images()[0]
    image = Image.fromarray(load_source_image(item)).reduce(4)
    return (np.asarray(image, dtype=np.float32) / 255.0).transpose(2, 0, 1).copy()
