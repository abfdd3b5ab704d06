"""Method adapters. ``METHODS`` maps names to :class:`~op4ksr_bench.methods.base.Method` classes, lazily.

Parametrised methods are spelled ``family:ARG`` (``spandrel:PATH``, ``folder:PATH``, ``external:NAME``) and
resolved by :func:`op4ksr_bench.methods.factory.create_method`.
"""

from op4ksr_bench.registry import Registry

METHODS: Registry = Registry("method")
METHODS.register("bicubic", "op4ksr_bench.methods.interpolation:BicubicMethod")
METHODS.register("lanczos", "op4ksr_bench.methods.interpolation:LanczosMethod")
METHODS.register("realesrgan-x4plus", "op4ksr_bench.methods.realesrgan:RealEsrganMethod")
METHODS.register("span-x4", "op4ksr_bench.methods.span:SpanMethod")
METHODS.register("span-x4-ch52", "op4ksr_bench.methods.span:SpanCh52Method")
METHODS.register("realsr-df2k-x4", "op4ksr_bench.methods.realsr:RealsrDf2kMethod")
METHODS.register("realsr-df2k-jpeg-x4", "op4ksr_bench.methods.realsr:RealsrDf2kJpegMethod")
METHODS.register("op4ksr", "op4ksr_bench.methods.op4ksr:Op4ksrMethod")

FAMILIES: Registry = Registry("method family")
"""Parametrised method families, spelled ``FAMILY:ARG`` on the command line; each class builds its constructor
arguments from ARG (:meth:`~op4ksr_bench.methods.base.Method.family_arguments`)."""
FAMILIES.register("spandrel", "op4ksr_bench.methods.spandrel_method:SpandrelMethod")
FAMILIES.register("folder", "op4ksr_bench.methods.folder:FolderMethod")
FAMILIES.register("external", "op4ksr_bench.methods.external:ExternalMethod")
FAMILIES.register("python", "op4ksr_bench.methods.python:CallableMethod")

PARAMETRISED = tuple(FAMILIES.names())
"""Families spelled ``family:ARG`` on the command line."""
