"""Diagnostics of a saved OP4KSR model on a built suite's HR images (full size, e.g. 3840x2160).

    python -m reference_model.evaluate vae-psnr --weights DIR [--suite 4ksr-syn] [--data DIR]
    python -m reference_model.evaluate crop-consistency --weights DIR [--suite 4ksr-syn] [--data DIR]
    python -m reference_model.evaluate ceilings --weights DIR [--suite 4ksr-syn] [--data DIR]
    python -m reference_model.evaluate shares --weights DIR [--suite 4ksr-syn] [--data DIR]

``vae-psnr``: the VAE alone, ``decode(encode(HR))`` against the HR, whole image at once (PSNR of 8-bit values,
``crop_border`` dropped as the suite scores). It bounds what a model that decodes its latents directly (the
paper's design, ``bicubic_skip`` off) can reach.

``crop-consistency``: the same 256x256 HR region (its LR, cut from the suite's LR at the centre of the image)
super-resolved alone and inside a 1024x1024 LR-derived neighbourhood; the PSNR between the two outputs over the
region less a ``margin`` of 16 px on each side (bicubic's own borders reach 8 px in; ``inf``: identical). A
model whose output depends on the crop size (normalisation statistics, global attention) scores low.

``ceilings``: what a ``bicubic_skip`` model could reach with this VAE, on three 512 px HR crops per image (LR
cut at LR (100, 200), (300, 500), (200, 700)): PSNR of bicubic, of ``bicubic + decode(E(HR)) - decode(E(bicubic))``
(the frozen decoder fed the HR's own latents: the transformer's best case), and of bicubic plus the 16x16 block
means of the true residual ``HR - bicubic``.

``shares``: where a ``bicubic_skip`` model's gain comes from, on the suite's whole images (PSNR of 8-bit values,
``crop_border`` dropped, through the benchmark's ``op4ksr`` method and its padding): ``bicubic`` (the benchmark's
method), ``prefilter`` (the model with its gate set to zero: the skip's learned LR prefilter alone, no transformer)
and ``model`` (the whole model).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

from op4ksr_bench.errors import Op4ksrError, UsageError


def psnr_8bit(prediction: np.ndarray, target: np.ndarray) -> float:
    """PSNR (dB) of two uint8 arrays of one shape (``inf`` when equal)."""
    mse = float(np.mean((prediction.astype(np.float64) - target.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div(255.0)[None]


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    return image[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()


def vae_psnr(model, suite) -> dict[str, float]:
    """``{image id: PSNR of decode(encode(HR))}``; the image is cut to a multiple of the VAE's compression."""
    from op4ksr_bench.imageio import read_image

    step = model.vae.spatial_compression
    border = int(suite.spec.crop_border or 0)
    scores = {}
    for entry in suite.entries:
        if entry.get("hr") is None:
            continue
        hr = read_image(suite.hr_path(entry))
        hr = hr[: hr.shape[0] // step * step, : hr.shape[1] // step * step]
        with torch.no_grad():
            reconstruction = _to_uint8(model.reconstruct(_to_tensor(hr)))
        cut = (slice(border, -border or None), slice(border, -border or None))
        scores[entry["id"]] = psnr_8bit(reconstruction[cut], hr[cut])
    return scores


def crop_consistency(model, suite, region: int = 256, context: int = 1024, margin: int = 16) -> dict[str, float]:
    """``{image id: PSNR between the region's output alone and inside the context}`` (HR pixels, centre crop)."""
    from op4ksr_bench.imageio import read_image

    scale = model.config.scale
    if region % model.pixels_per_token or context % model.pixels_per_token:
        raise UsageError(f"region and context must be multiples of {model.pixels_per_token} px")
    scores = {}
    for entry in suite.entries:
        if entry.get("lr") is None:
            continue
        lr = read_image(suite.lr_path(entry))
        small, large = region // scale, context // scale
        if min(lr.shape[:2]) < large:
            continue
        top, left = (lr.shape[0] - large) // 2, (lr.shape[1] - large) // 2
        neighbourhood = lr[top : top + large, left : left + large]
        offset = (large - small) // 2  # the region at the centre of the neighbourhood
        alone = neighbourhood[offset : offset + small, offset : offset + small]
        with torch.no_grad():
            inside = _to_uint8(model.upscale(_to_tensor(neighbourhood)))
            by_itself = _to_uint8(model.upscale(_to_tensor(alone)))
        start = offset * scale
        inside = inside[start : start + region, start : start + region]
        keep = slice(margin, region - margin)
        scores[entry["id"]] = psnr_8bit(by_itself[keep, keep], inside[keep, keep])
    if not scores:
        raise UsageError(f"suite {suite.spec.name} has no LR image of at least {context // scale} px")
    return scores


def shares(model, suite) -> dict[str, float]:
    """``{"<id>:<kind>": PSNR}`` for kinds ``bicubic``, ``prefilter`` and ``model`` (docstring above)."""
    from op4ksr_bench.imageio import read_image
    from op4ksr_bench.methods.interpolation import BicubicMethod
    from op4ksr_bench.methods.op4ksr import Op4ksrMethod

    if model.skip_gate is None:
        raise UsageError("shares needs a bicubic_skip model (its gate splits the prefilter from the transformer)")
    border = int(suite.spec.crop_border or 0)
    cut = (slice(border, -border or None), slice(border, -border or None))
    method = Op4ksrMethod.from_model(model, "cpu", "float32")
    bicubic = BicubicMethod(scale=model.config.scale)
    scores = {}
    gate = model.skip_gate.detach().clone()
    for entry in suite.entries:
        if entry.get("lr") is None or entry.get("hr") is None:
            continue
        lr, hr = _to_tensor(read_image(suite.lr_path(entry))), read_image(suite.hr_path(entry))
        with torch.no_grad():
            outputs = {"bicubic": bicubic.upscale(lr), "model": method.upscale(lr)}
            model.skip_gate.zero_()
            try:
                outputs["prefilter"] = method.upscale(lr)
            finally:
                model.skip_gate.copy_(gate)
        for kind, image in outputs.items():
            scores[f"{entry['id']}:{kind}"] = psnr_8bit(_to_uint8(image)[cut], hr[cut])
    return scores


CEILING_CORNERS = ((100, 200), (300, 500), (200, 700))


def ceilings(model, suite, size: int = 512, corners=CEILING_CORNERS) -> dict[str, float]:
    """``{"<id>@<y>,<x>:<kind>": PSNR}`` for kinds ``bicubic``, ``decoder`` and ``block-means`` (docstring above)."""
    import torch.nn.functional as F

    from op4ksr_bench.imageio import read_image
    from reference_model.model import benchmark_bicubic

    scale, small = model.config.scale, size // model.config.scale
    scores = {}
    for entry in suite.entries:
        if entry.get("lr") is None or entry.get("hr") is None:
            continue
        lr, hr = read_image(suite.lr_path(entry)), read_image(suite.hr_path(entry))
        for top, left in corners:
            if top + small > lr.shape[0] or left + small > lr.shape[1]:
                continue
            low = _to_tensor(lr[top : top + small, left : left + small])
            high = hr[scale * top : scale * top + size, scale * left : scale * left + size]
            with torch.no_grad():
                bicubic = benchmark_bicubic(low, (size, size))
                change = model.decode(model.encode(_to_tensor(high))) - model.decode(model.encode(bicubic))
                residual = _to_tensor(high) - bicubic
                block = F.interpolate(F.avg_pool2d(residual, 16), scale_factor=16, mode="nearest")
            for kind, image in (("bicubic", bicubic), ("decoder", bicubic + change), ("block-means", bicubic + block)):
                scores[f"{entry['id']}@{top},{left}:{kind}"] = psnr_8bit(_to_uint8(image), high)
    return scores


def main(argv: list[str] | None = None) -> int:
    from op4ksr_bench.data.manifest import BuiltSuite
    from op4ksr_bench.paths import data_dir
    from reference_model.model import OP4KSR

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("vae-psnr", "crop-consistency", "ceilings", "shares"))
    parser.add_argument("--weights", type=Path, required=True, help="a saved OP4KSR model folder")
    parser.add_argument("--suite", default="4ksr-syn")
    parser.add_argument("--data", type=Path, help="data folder with the built suites")
    args = parser.parse_args(argv)
    try:
        suite = BuiltSuite.open(args.data or data_dir(), args.suite)
        model = OP4KSR.from_pretrained(args.weights).eval()
        functions = {"vae-psnr": vae_psnr, "crop-consistency": crop_consistency, "ceilings": ceilings, "shares": shares}
        function = functions[args.what]
        scores = function(model, suite)
    except Op4ksrError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for image_id, value in scores.items():
        print(f"{image_id}: {value:.2f} dB")
    kinds = {"ceilings": ("bicubic", "decoder", "block-means"), "shares": ("bicubic", "prefilter", "model")}
    if args.what in kinds:
        for kind in kinds[args.what]:
            values = [value for key, value in scores.items() if key.endswith(f":{kind}")]
            print(f"{args.what} {args.weights} on {args.suite}: {kind} mean {sum(values) / len(values):.2f} dB "
                  f"over {len(values)} {'crops' if args.what == 'ceilings' else 'images'}")  # fmt: skip
        return 0
    finite = [value for value in scores.values() if math.isfinite(value)]
    mean = f"{sum(finite) / len(finite):.2f} dB over {len(finite)} finite" if finite else "all identical (inf)"
    print(f"{args.what} {args.weights} on {args.suite}: mean {mean} of {len(scores)} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
