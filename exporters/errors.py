"""Export errors (all are ToolkitErrors: the CLI prints them on one line, exit code 2)."""

from runtimes.errors import ToolkitError


class ExportError(ToolkitError):
    """The export cannot start or did not produce a valid artifact."""


class OutputExistsError(ExportError):
    """The output directory exists and ``--force`` was not given."""


class ParityError(ExportError):
    """The artifact disagrees with the PyTorch reference beyond the stated tolerance."""
