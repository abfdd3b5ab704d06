"""Metrics. ``METRICS`` maps names to :class:`~op4ksr_bench.metrics.base.Metric` classes, lazily."""

from op4ksr_bench.registry import Registry

METRICS: Registry = Registry("metric")
