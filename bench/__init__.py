"""Benchmark Whisper artifacts against the PyTorch baseline on real audio.

``python -m bench ARTIFACT ... --manifest ../shared/data/speech/manifest.tsv --subset en``
"""
