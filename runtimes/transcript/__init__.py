"""From decoded windows to transcripts: the pipeline over VAD windows (``pipeline``),
openai-style sequential long-form decoding (``sequential``), segments and their output
formats (``segments``, ``formats``) and words (``words``).

Imports ``audio``, ``decode`` and the runtime interface (``runtimes.base``); the CLI, the
batch job and the server build on it.
"""
