"""Export Whisper checkpoints to deployment artifacts for many inference runtimes.

Nothing heavy is imported here: ``import exporters`` must stay cheap so that runtimes and
the CLI start fast and a missing optional runtime costs nothing until it is used.
"""

__version__ = "0.1.0"
