"""Method adapters. ``METHODS`` maps names to :class:`~op4ksr_bench.methods.base.Method` classes, lazily.

Parametrised methods are spelled ``family:ARG`` (``spandrel:PATH``, ``folder:PATH``, ``external:NAME``) and
resolved by :func:`op4ksr_bench.methods.factory.create_method`.
"""

from op4ksr_bench.registry import Registry

METHODS: Registry = Registry("method")
