"""``python -m runtimes.serve ARTIFACT --ray``: the same server as a Ray Serve application.

Each replica is the plain server's whole stack: it loads the artifact once, runs the
toolkit's own dynamic batcher (iteration-level: windows of different requests join the
running batch at every decoder step; Serve's ``@serve.batch`` groups whole requests, which
would hold a short clip behind a long one) and mounts the same FastAPI app, so routes,
errors, the API key, the upload limit and the timeouts are the same code. Serve's proxy
spreads requests over the replicas:

- a replica takes at most ``--max-queue`` requests (``max_ongoing_requests``); beyond
  that, up to ``--max-queue`` more wait at the proxy for the first free replica
  (``max_queued_requests``) and the rest get 503 at once with ``Retry-After: 1``, as from
  the plain server (but with Serve's plain-text body: the proxy answers, not the app);
- ``--autoscale MIN MAX`` targets ``--max-batch-size`` requests per replica: a replica
  with a full batch's worth is busy;
- Serve checks each replica's health (its batcher thread alive) and replaces a dead one;
  on SIGINT/SIGTERM replicas finish what they hold (up to ``--timeout``) before stopping.

Ray is imported only here (the ``ray`` extra).
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

from ray import serve

from runtimes.base import DecodingOptions, RuntimeOptions
from runtimes.cluster import count_range, worker_options
from runtimes.errors import OptionError
from runtimes.serve.config import ServeConfig

APP_NAME = "whisper"


@dataclass(frozen=True)
class Scaling:
    """How many replicas, and what each reserves.

    Attributes:
        replicas: a fixed count, or (min, max) for Serve's autoscaler.
        cpus: CPUs Ray reserves per replica (its runtime's threads default to this many).
        gpus: GPUs Ray reserves per replica (1 = one model per GPU).
    """

    replicas: int | tuple[int, int] = 1
    cpus: float = 1.0
    gpus: float = 0.0

    def __post_init__(self) -> None:
        if count_range(self.replicas) is None:
            what = "--autoscale MIN MAX needs 1 <= MIN <= MAX" if isinstance(
                self.replicas, tuple) else "--replicas must be >= 1"
            raise OptionError(f"{what}, got {self.replicas!r}")
        if not self.cpus > 0 or self.gpus < 0:
            raise OptionError(f"--cpus-per-replica must be > 0 and --gpus-per-replica >= 0, got "
                              f"{self.cpus!r} and {self.gpus!r}")


@serve.ingress()
class WhisperReplica:
    """One replica: the artifact, its batcher and the FastAPI app (``create_app``)."""

    def __init__(self, artifact: str, options: RuntimeOptions, decoding: DecodingOptions,
                 config: ServeConfig, batch_invariant: bool) -> None:
        import runtimes
        from runtimes.serve.engine import ServeEngine

        model = runtimes.load(artifact, options, decoding)
        if config.max_subtitle_s is not None:
            model.runtime.check_aligns()
        self.engine = ServeEngine(model, config.max_batch_size, config.max_wait_ms / 1000,
                                  batching=config.batching, batch_invariant=batch_invariant)
        self.engine.warm_up()
        self.config = config

    def __serve_build_asgi_app__(self):
        from runtimes.serve.app import create_app

        context = serve.get_replica_context()
        return create_app(self.engine, self.config, replica=context.replica_tag)

    def check_health(self) -> None:
        """Serve's per-replica probe: a replica whose model thread died is replaced."""
        if not self.engine.batcher.alive:
            raise RuntimeError("the batcher's model thread is not running")


def application(artifact: Path, options: RuntimeOptions, decoding: DecodingOptions,
                config: ServeConfig, batch_invariant: bool, scaling: Scaling):
    """The bound Serve application (see the module docstring for the limits it sets)."""
    options = worker_options(options, scaling.cpus)
    if isinstance(scaling.replicas, tuple):
        counts = {"autoscaling_config": {
            "min_replicas": scaling.replicas[0], "max_replicas": scaling.replicas[1],
            "target_ongoing_requests": config.max_batch_size}}
    else:
        counts = {"num_replicas": scaling.replicas}
    deployment = serve.deployment(
        WhisperReplica, name="WhisperReplica", **counts,
        max_ongoing_requests=config.max_queue, max_queued_requests=config.max_queue,
        backpressure_config={"status_code": 503, "retry_after_s": 1},
        ray_actor_options={"num_cpus": scaling.cpus, "num_gpus": scaling.gpus},
        health_check_period_s=5, health_check_timeout_s=30,
        graceful_shutdown_timeout_s=config.timeout_s)
    return deployment.bind(str(artifact), options, decoding, config, batch_invariant)


def run(app, host: str, port: int, config: ServeConfig, address: str | None,
        log_level: str, announce) -> None:
    """Start Ray (or join ``address``) and Serve on ``host:port``, deploy ``app``, and block
    until SIGINT or SIGTERM; then remove the application (and stop a Ray started here).
    ``announce`` is called once every replica has loaded its model."""
    import ray

    # ray.init without an address joins $RAY_ADDRESS's cluster when set: not ours to stop
    started_here = (not ray.is_initialized() and address is None
                    and not os.environ.get("RAY_ADDRESS"))
    ray.init(address=address, include_dashboard=False, logging_level=log_level.upper(),
             configure_logging=True)
    logging = {"log_level": log_level.upper(), "enable_access_log": log_level == "debug"}
    try:
        serve.start(http_options={"host": host, "port": port,
                                  # the app answers its own 504 first
                                  "request_timeout_s": config.timeout_s + 30},
                    logging_config=logging)
        serve.run(app, name=APP_NAME, route_prefix="/", logging_config=logging)
        announce()
        _wait_for_signal()
    finally:
        try:
            serve.delete(APP_NAME)
            if started_here:
                serve.shutdown()
        finally:
            if started_here:
                ray.shutdown()


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
