"""The one place images are read and written.

Policy for every image the project reads (sources, LR inputs, method outputs, references):

========================  ===================================================================
input                     what happens
========================  ===================================================================
zero-byte file            rejected: ``ImageError("... is empty (0 bytes) ...")``
corrupt / truncated       rejected: ``ImageError`` naming the file and PIL's reason
over ``MAX_PIXELS``       rejected before decoding (decompression-bomb guard)
EXIF orientation          applied (the image is rotated/flipped upright), then the tag is dropped
8-bit RGB                 used as is
greyscale (L, I;16, I)    replicated to three channels
16-bit (I;16, RGB 48-bit) scaled to 8 bits with ``round(v / 257)`` (exact inverse of ``v * 257``)
palette (P)               expanded to RGB; a palette with transparency follows the alpha rule
RGBA / LA                 accepted only if every alpha value is 255 (then dropped); otherwise
                          rejected, because transparent pixels have no defined colour
CMYK / YCbCr / LAB        converted to RGB by PIL
anything else (F, 1, ...) ``1`` (bilevel) is expanded to 0/255; float modes are rejected
========================  ===================================================================

Arrays are ``uint8`` ``H x W x 3``, C-contiguous and writable (never a read-only view of PIL's buffer);
tensors are ``float32`` ``[1, 3, H, W]`` in ``[0, 1]``. PNG output is
written deterministically (fixed compression level, no metadata, no timestamps) and atomically.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from op4ksr_bench.atomic import atomic_write_bytes
from op4ksr_bench.errors import ImageError

if TYPE_CHECKING:
    import torch

MAX_PIXELS = 150_000_000
"""Largest image accepted (pixels). 12288x12288 fits; a decompression bomb does not."""

PNG_COMPRESS_LEVEL = 6

Image.MAX_IMAGE_PIXELS = None  # the check below replaces PIL's warning-then-error behaviour with one policy


def _open_checked(source: Path | bytes, name: str, max_pixels: int) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except UnidentifiedImageError as error:
        raise ImageError(f"{name}: not a readable image ({error}); re-export it as PNG or JPEG") from error
    except OSError as error:
        raise ImageError(f"{name}: cannot open ({error})") from error
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(
            f"{name}: {width}x{height} is {width * height:,} pixels, over the {max_pixels:,} limit "
            "(decompression-bomb guard); downscale or crop it first"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"{name}: corrupt or truncated image data ({error}); replace the file") from error
    return image


def _to_rgb8(image: Image.Image, name: str) -> np.ndarray:
    image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA") if "transparency" in image.info else image.convert("RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        alpha = np.asarray(image.getchannel("A"))
        if alpha.min() < 255:
            raise ImageError(
                f"{name}: has transparent pixels (alpha min {int(alpha.min())}); flatten it onto a background first"
            )
        image = image.convert("RGB") if mode != "LA" else image.convert("L")
        mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image).astype(np.float64)
        if mode == "I" and array.max() > 65535:
            raise ImageError(f"{name}: 32-bit integer image with values above 65535 is not supported")
        grey = np.clip(np.round(array / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "1":
        grey = np.asarray(image.convert("L"))
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "L":
        grey = np.asarray(image)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("F",):
        raise ImageError(f"{name}: floating-point images (mode F) are not supported; save as 8- or 16-bit PNG")
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        image = image.convert("RGB")
    if image.mode != "RGB":
        raise ImageError(f"{name}: unsupported image mode {image.mode!r}; convert it to RGB")
    return np.asarray(image, dtype=np.uint8)


def _owned(array: np.ndarray) -> np.ndarray:
    """``array`` itself if it is writable and C-contiguous, else a copy that is (PIL hands out read-only views)."""
    if array.flags.writeable and array.flags.c_contiguous:
        return array
    return np.array(array, dtype=np.uint8, order="C", copy=True)


def _read_16bit_rgb_png(path: Path) -> np.ndarray | None:
    """48/64-bit PNGs decode to 8 bits in PIL; read them exactly with OpenCV when available."""
    try:
        import cv2
    except ImportError:  # pragma: no cover - opencv comes with pyiqa
        return None
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None or array.dtype != np.uint16 or array.ndim != 3:
        return None
    if array.shape[2] == 4:
        if array[:, :, 3].min() < 65535:
            raise ImageError(f"{path}: has transparent pixels; flatten it onto a background first")
        array = array[:, :, :3]
    rgb = array[:, :, ::-1].astype(np.float64)
    return np.clip(np.round(rgb / 257.0), 0, 255).astype(np.uint8)


def read_image(path: Path | str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read any supported image file as ``uint8`` ``H x W x 3`` RGB, following the module policy.

    Raises:
        ImageError: with one line naming the file, what is wrong and what to do.
    """
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: is empty (0 bytes); re-create or remove it")
    image = _open_checked(path, str(path), max_pixels)
    if image.format == "PNG" and image.mode in ("RGB", "RGBA") and _png_bit_depth(path) == 16:
        exact = _read_16bit_rgb_png(path)
        if exact is not None:
            return _owned(exact)
    return _owned(_to_rgb8(image, str(path)))


def decode_image_bytes(data: bytes, name: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an in-memory image (e.g. a JPEG stream cut from a container) with the same policy."""
    if not data:
        raise ImageError(f"{name}: is empty (0 bytes)")
    return _owned(_to_rgb8(_open_checked(data, name, max_pixels), name))


def _png_bit_depth(path: Path) -> int:
    with open(path, "rb") as handle:
        header = handle.read(26)
    if len(header) < 26 or header[:8] != b"\x89PNG\r\n\x1a\n":
        return 8
    return header[24]


def encode_png(array: np.ndarray, compress_level: int = PNG_COMPRESS_LEVEL) -> bytes:
    """Encode ``uint8`` ``H x W x 3`` as PNG bytes, deterministically (no metadata).

    ``compress_level`` (zlib, 0-9) changes only size and speed, never pixels; the runner saves method outputs
    at level 1 (about 4x faster than 6 on 4K images, files about 25% larger).
    """
    check_rgb8(array, "array to encode")
    buffer = io.BytesIO()
    Image.fromarray(array, mode="RGB").save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def write_png(path: Path | str, array: np.ndarray) -> None:
    """Write ``uint8`` ``H x W x 3`` to ``path`` as PNG, atomically and byte-reproducibly."""
    atomic_write_bytes(Path(path), encode_png(array))


def check_rgb8(array: np.ndarray, name: str) -> None:
    """Raise ``ImageError`` unless ``array`` is ``uint8`` ``H x W x 3``."""
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        shape = getattr(array, "shape", None)
        dtype = getattr(array, "dtype", None)
        raise ImageError(f"{name}: expected uint8 HxWx3, got {type(array).__name__} shape={shape} dtype={dtype}")


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """``uint8`` ``H x W x 3`` -> ``float32`` ``[1, 3, H, W]`` in ``[0, 1]`` (value / 255)."""
    import torch

    check_rgb8(array, "image")
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def from_tensor(tensor: torch.Tensor) -> np.ndarray:
    """``[1, 3, H, W]`` in ``[0, 1]`` -> ``uint8`` ``H x W x 3`` by ``round(clamp(x, 0, 1) * 255)``."""
    if tensor.ndim != 4 or tensor.shape[0] != 1 or tensor.shape[1] != 3:
        raise ImageError(f"expected a [1, 3, H, W] tensor, got shape {tuple(tensor.shape)}")
    array = tensor.detach().float().clamp(0.0, 1.0).mul(255.0).round().to("cpu")
    return array[0].permute(1, 2, 0).numpy().astype(np.uint8)
