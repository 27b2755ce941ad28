"""The artifact contract and the files in it: ``artifact.json`` and ``graph.json``
(``manifest``: written by ``exporters``, read here, one definition for both), checkpoint
shapes (``checkpoint``) and whisper.cpp's ggml file (``ggml_file``).

Imports only ``runtimes.errors`` and ``runtimes.base``: everything above reads artifacts.
"""
