"""Metrics. ``METRICS`` maps names to :class:`~op4ksr_bench.metrics.base.Metric` classes, lazily."""

from op4ksr_bench.registry import Registry

METRICS: Registry = Registry("metric")

for _name, _target in (
    ("psnr", "op4ksr_bench.metrics.fidelity:PSNR"),
    ("ssim", "op4ksr_bench.metrics.fidelity:SSIM"),
    ("psnr-y", "op4ksr_bench.metrics.fidelity:PSNRY"),
    ("ssim-y", "op4ksr_bench.metrics.fidelity:SSIMY"),
    ("ssim-official", "op4ksr_bench.metrics.fidelity:SSIMOfficial"),
    ("ssim-matlab", "op4ksr_bench.metrics.fidelity:SSIMMatlab"),
    ("ms-ssim", "op4ksr_bench.metrics.fidelity:MSSSIM"),
    ("lpips-alex", "op4ksr_bench.metrics.learned:LPIPSAlex"),
    ("lpips-vgg", "op4ksr_bench.metrics.learned:LPIPSVGG"),
    ("dists", "op4ksr_bench.metrics.learned:DISTS"),
    ("niqe", "op4ksr_bench.metrics.niqe:NIQE"),
    ("niqe-ycbcr", "op4ksr_bench.metrics.niqe:NIQEYCbCr"),
    ("niqe-pyiqa", "op4ksr_bench.metrics.learned:NIQEPyiqa"),
    ("musiq", "op4ksr_bench.metrics.learned:MUSIQ"),
    ("maniqa", "op4ksr_bench.metrics.learned:MANIQA"),
    ("clipiqa", "op4ksr_bench.metrics.learned:CLIPIQA"),
    ("topiq-nr", "op4ksr_bench.metrics.learned:TOPIQNR"),
    ("glcm", "op4ksr_bench.metrics.texture:GLCMScore"),
    ("compression-ratio", "op4ksr_bench.metrics.texture:CompressionRatio"),
    ("pas", "op4ksr_bench.metrics.artifacts:PAS"),
    ("dpas", "op4ksr_bench.metrics.artifacts:DPAS"),
    ("seam", "op4ksr_bench.metrics.artifacts:Seam"),
):
    METRICS.register(_name, _target)
del _name, _target
