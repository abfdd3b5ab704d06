"""Exceptions that carry one line for the user: what is wrong and what to do."""


class Op4ksrError(Exception):
    """Base class: the message is shown to the user as one line (exit code 1)."""


class UsageError(Op4ksrError):
    """The command line asked for something that does not exist or does not fit (exit code 2)."""


class ImageError(Op4ksrError):
    """An image file cannot be used: corrupt, truncated, empty, too large or of an unsupported kind."""


class WeightsMissingError(Op4ksrError):
    """A weights file a metric or method needs is not where it should be."""


class ManifestError(Op4ksrError):
    """A suite manifest is missing, malformed, or does not match the files on disk."""
