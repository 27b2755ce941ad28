"""Prometheus metrics of one server (its own registry, so tests can run several servers)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)


class ServerMetrics:
    """Requests, errors, queue depth, batch sizes, latency and audio seconds processed."""

    def __init__(self, queue_depth: Callable[[], float], in_flight: Callable[[], float],
                 replica: str | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        if replica is not None:  # several replicas behind one address (Ray): which answered
            Info("whisper_replica", "The replica whose metrics these are",
                 registry=r).info({"replica": replica})
        self.requests = Counter("whisper_http_requests", "HTTP requests by path and status",
                                ["path", "status"], registry=r)
        self.errors = Counter("whisper_errors", "Error responses by OpenAI error code",
                              ["code"], registry=r)
        self.batch_size = Histogram(
            "whisper_batch_size",
            "Windows per model call (rows per decoder step with --batching steps)",
            buckets=BATCH_BUCKETS, registry=r)
        self.latency = Histogram("whisper_request_latency_seconds",
                                 "Transcription request latency (upload read to response)",
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.audio_seconds = Counter("whisper_audio_seconds",
                                     "Seconds of audio transcribed", registry=r)
        Gauge("whisper_queue_depth", "Windows waiting for the model",
              registry=r).set_function(queue_depth)
        Gauge("whisper_requests_in_flight", "Transcription requests admitted and not answered",
              registry=r).set_function(in_flight)

    def render(self) -> bytes:
        return generate_latest(self.registry)
