"""``python -m runtimes.batch``: transcribe an archive with Ray Data, resumably.

Files are listed here (``inputs``), decoded and cut into windows by CPU tasks and
transcribed by a pool of actors that each load the artifact once (``job``); the driver
writes the results (``store``). Ray is imported only inside ``job``.
"""
