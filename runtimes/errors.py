"""Errors a user can act on. Each message names the bad value and what is accepted."""


class ToolkitError(Exception):
    """Base class: the CLI prints these as one line and exits non-zero, without a traceback."""


class AudioError(ToolkitError):
    """An audio file is missing, empty, not audio, or holds no samples."""


class ArtifactError(ToolkitError):
    """An artifact directory is missing, incomplete, corrupted or of an unknown format."""


class OptionError(ToolkitError):
    """An option has a value that is not accepted (the message lists the accepted ones)."""


class DeviceError(ToolkitError):
    """The requested device is not available on this machine."""
