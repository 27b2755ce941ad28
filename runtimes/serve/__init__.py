"""Serve any artifact over HTTP with OpenAI's audio transcription API and dynamic batching.

    python -m runtimes.serve artifacts/tiny.en-ctranslate2-int8_float32 --port 8000

Existing OpenAI clients work unchanged (``base_url="http://127.0.0.1:8000/v1"``). The web
stack (FastAPI, uvicorn, python-multipart, prometheus-client) is the ``serve`` extra and is
imported only by this package.
"""
