"""Reading ncnn model files: the text ``.param`` graph and the binary ``.bin`` weights.

Only what the converters (Real-ESRGAN, RealSR, SPAN) need, written from ncnn's documented file format:

* ``.param``: line 1 is the magic ``7767517``; line 2 ``layer_count blob_count``; then one line per layer:
  ``type name input_count output_count inputs... outputs... key=value...``. A key ``-233XX`` holds an array
  (parameter id ``XX``) written ``count,v1,v2,...``.
* ``.bin``: the weights of the layers that have any, concatenated in layer order. A ``Convolution`` stores
  its weight blob first, prefixed by a 4-byte storage tag (``0x01306B47``: IEEE fp16 values, padded to a
  multiple of 4 bytes; four zero bytes: raw fp32 values), then, if ``bias_term`` (param ``5``) is 1, its bias
  as raw fp32 without a tag. A ``MemoryData`` layer stores its constant as raw fp32 without a tag. Values are
  little-endian.

:func:`match_graph` checks a parsed graph against an expected one node by node: layer types, every parameter
(exactly: no missing, extra or different key) and which node feeds each input (``Split`` layers, ncnn's
fan-out, are looked through).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from op4ksr_bench.errors import Op4ksrError

PARAM_MAGIC = 7767517
TAG_FLOAT16 = 0x01306B47
TAG_FLOAT32 = 0x00000000
LAYERS_WITHOUT_WEIGHTS = frozenset({"Input", "Split", "Concat", "Eltwise", "Interp", "BinaryOp", "ReLU", "Noop"})


class NcnnFormatError(Op4ksrError):
    """An ncnn ``.param``/``.bin`` pair is malformed or is not the model it should be."""


@dataclass(frozen=True)
class NcnnLayer:
    """One layer line of a ``.param`` file.

    Attributes:
        type: Layer type (``Convolution``, ``Split``, ...).
        name: Layer name.
        inputs: Names of the input blobs.
        outputs: Names of the output blobs.
        params: Parameter id -> int, float or tuple of floats (arrays).
        line: 1-based line number in the ``.param`` file (for messages).
    """

    type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[int, int | float | tuple[float, ...]] = field(default_factory=dict)
    line: int = 0

    def param(self, key: int, default: int | float | tuple[float, ...] | None = None):
        """The value of parameter ``key`` or ``default`` (ncnn's default for an absent key)."""
        return self.params.get(key, default)


def _number(text: str, where: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise NcnnFormatError(f"{where}: {text!r} is not a number") from None


def parse_param(text: str, name: str = ".param") -> list[NcnnLayer]:
    """Parse the text of an ncnn ``.param`` file into its layers, in file order.

    Raises:
        NcnnFormatError: the magic number, the counts or a layer line is wrong.
    """
    lines = [line for line in text.splitlines()]
    if len(lines) < 2 or lines[0].strip() != str(PARAM_MAGIC):
        raise NcnnFormatError(f"{name}: first line is not the ncnn magic {PARAM_MAGIC}; not an ncnn .param file")
    counts = lines[1].split()
    if len(counts) != 2:
        raise NcnnFormatError(f"{name}:2: expected 'layer_count blob_count', got {lines[1]!r}")
    layer_count = int(_number(counts[0], f"{name}:2"))
    layers: list[NcnnLayer] = []
    for number, raw in enumerate(lines[2:], start=3):
        tokens = raw.split()
        if not tokens:
            continue
        where = f"{name}:{number}"
        if len(tokens) < 4:
            raise NcnnFormatError(f"{where}: a layer line needs type, name and blob counts, got {raw!r}")
        n_in, n_out = int(_number(tokens[2], where)), int(_number(tokens[3], where))
        blobs_end = 4 + n_in + n_out
        if len(tokens) < blobs_end:
            raise NcnnFormatError(f"{where}: declares {n_in} inputs and {n_out} outputs but lists fewer blobs")
        params: dict[int, int | float | tuple[float, ...]] = {}
        for token in tokens[blobs_end:]:
            key_text, sep, value_text = token.partition("=")
            if not sep:
                raise NcnnFormatError(f"{where}: parameter {token!r} is not key=value")
            key = int(_number(key_text, where))
            if key <= -23300:
                items = value_text.split(",")
                count = int(_number(items[0], where))
                values = tuple(float(_number(item, where)) for item in items[1:])
                if len(values) != count:
                    raise NcnnFormatError(f"{where}: array {token!r} declares {count} values, has {len(values)}")
                params[-key - 23300] = values
            else:
                params[key] = _number(value_text, where)
        layers.append(
            NcnnLayer(
                type=tokens[0],
                name=tokens[1],
                inputs=tuple(tokens[4 : 4 + n_in]),
                outputs=tuple(tokens[4 + n_in : blobs_end]),
                params=params,
                line=number,
            )
        )
    if len(layers) != layer_count:
        raise NcnnFormatError(f"{name}: header declares {layer_count} layers, the file has {len(layers)}")
    return layers


class BinReader:
    """Sequential reader over the bytes of an ncnn ``.bin`` file.

    Args:
        data: The whole file.
        name: File name for messages.
    """

    def __init__(self, data: bytes, name: str = ".bin") -> None:
        self.data = data
        self.name = name
        self.offset = 0

    def _take(self, count: int, what: str) -> bytes:
        if self.offset + count > len(self.data):
            raise NcnnFormatError(
                f"{self.name}: ends at byte {len(self.data)} while reading {what} "
                f"({count} bytes from offset {self.offset}); the file is truncated or belongs to another model"
            )
        chunk = self.data[self.offset : self.offset + count]
        self.offset += count
        return chunk

    def tagged_weights(self, count: int, what: str, allowed_tags: tuple[int, ...] = (TAG_FLOAT16,)) -> np.ndarray:
        """Read a tagged weight blob of ``count`` values; returns fp16 or fp32 values as stored.

        Raises:
            NcnnFormatError: unknown or unexpected tag, or not enough bytes.
        """
        tag_offset = self.offset
        (tag,) = struct.unpack("<I", self._take(4, f"the storage tag of {what}"))
        if tag not in allowed_tags:
            allowed = ", ".join(f"0x{value:08X}" for value in allowed_tags)
            raise NcnnFormatError(
                f"{self.name}: {what} at offset {tag_offset} has storage tag 0x{tag:08X}, expected {allowed}"
            )
        if tag == TAG_FLOAT16:
            size = count * 2
            raw = self._take(size, what)
            self._take((-size) % 4, f"the padding after {what}")
            return np.frombuffer(raw, dtype="<f2").copy()
        return np.frombuffer(self._take(count * 4, what), dtype="<f4").copy()

    def raw_float32(self, count: int, what: str) -> np.ndarray:
        """Read ``count`` untagged little-endian fp32 values (ncnn's bias blobs)."""
        return np.frombuffer(self._take(count * 4, what), dtype="<f4").copy()

    def finish(self) -> None:
        """Raise unless every byte of the file was consumed."""
        if self.offset != len(self.data):
            raise NcnnFormatError(
                f"{self.name}: {len(self.data) - self.offset} bytes left unread after the last layer "
                f"(read {self.offset} of {len(self.data)}); the .bin does not belong to this .param"
            )


@dataclass(frozen=True)
class Node:
    """One expected (non-``Split``) layer of a graph, for :func:`match_graph`.

    Attributes:
        type: Layer type.
        name: Logical name (used in messages and by later nodes' ``inputs``).
        inputs: Logical names of the nodes producing this layer's inputs, in order.
        params: The layer's exact parameters (every key the ``.param`` line must have, and nothing else).
    """

    type: str
    name: str
    inputs: tuple[str, ...] = ()
    params: dict[int, int | float | tuple[float, ...]] = field(default_factory=dict)


def match_graph(layers: list[NcnnLayer], nodes: list[Node], name: str = "model") -> list[tuple[Node, NcnnLayer]]:
    """Check ``layers`` against ``nodes`` (in order, ``Split`` layers looked through); return the pairs.

    The first node's layer must read the blob ``data`` and the last one write the blob ``output`` (the names
    the methods' ncnn reference inference uses).

    Raises:
        NcnnFormatError: a missing, extra or different layer, parameter or connection (one line naming it).
    """
    producer: dict[str, str] = {}
    pairs: list[tuple[Node, NcnnLayer]] = []
    expected = iter(nodes)
    for layer in layers:
        where = f"{name}.param:{layer.line} ({layer.type} {layer.name})"
        sources = []
        for blob in layer.inputs:
            if blob not in producer:
                raise NcnnFormatError(f"{where}: reads blob {blob!r} before any layer writes it")
            sources.append(producer[blob])
        if layer.type == "Split":
            if len(layer.inputs) != 1 or layer.params:
                raise NcnnFormatError(f"{where}: a Split needs one input and no parameters")
            for blob in layer.outputs:
                producer[blob] = sources[0]
            continue
        node = next(expected, None)
        if node is None:
            raise NcnnFormatError(f"{where}: extra layer after the {len(nodes)} the architecture has")
        if layer.type != node.type:
            raise NcnnFormatError(f"{where}: expected a {node.type} layer ({node.name})")
        if tuple(sources) != node.inputs:
            raise NcnnFormatError(f"{where}: {node.name} reads {tuple(sources)}, expected {node.inputs}")
        if layer.params != node.params:
            raise NcnnFormatError(f"{where}: {node.name} has parameters {layer.params}, expected {node.params}")
        if len(layer.outputs) != 1:
            raise NcnnFormatError(f"{where}: {node.name} must write one blob")
        producer[layer.outputs[0]] = node.name
        pairs.append((node, layer))
    if len(pairs) != len(nodes):
        raise NcnnFormatError(
            f"{name}.param: has {len(pairs)} layers (without Split); the architecture has {len(nodes)}"
        )
    if pairs[0][1].outputs != ("data",) or pairs[-1][1].outputs != ("output",):
        raise NcnnFormatError(f"{name}.param: the input blob must be 'data' and the output blob 'output'")
    return pairs
