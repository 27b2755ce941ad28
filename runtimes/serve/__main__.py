"""``python -m runtimes.serve ARTIFACT``: serve an artifact with OpenAI's audio API."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from dataclasses import replace
from pathlib import Path

from runtimes.cli import (
    ADDRESS_HELP,
    BEAM_HELP,
    SUBTITLE_HELP,
    add_fallback_arguments,
    add_runtime_arguments,
    fallback_fields,
    fitted,
    runtime_options,
)
from runtimes.errors import ToolkitError
from runtimes.serve.config import BATCHING

API_KEY_ENV = "WHISPER_API_KEY"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtimes.serve", description=__doc__)
    p.add_argument("artifact", type=Path, help="artifact, transformers or CTranslate2 directory")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    p.add_argument("--api-key", default=os.environ.get(API_KEY_ENV),
                   help=f"require 'Authorization: Bearer KEY' (default: ${API_KEY_ENV}, else none)")
    p.add_argument("--model-id", help="id listed by /v1/models (default: the directory name)")
    _add_batching_arguments(p)
    _add_limit_arguments(p)
    _add_runtime_arguments(p)
    _add_ray_arguments(p)
    p.add_argument("--log-level", default="info",
                   choices=("critical", "error", "warning", "info", "debug"),
                   help="the server's log level (default: info)")
    return p


def _add_batching_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-batch-size", type=int, default=8,
                   help="windows per model call; 1 disables dynamic batching (default 8)")
    p.add_argument("--max-wait-ms", type=float, default=10.0,
                   help="how long a window waits for others to join its batch (default 10)")
    p.add_argument("--batching", choices=BATCHING, default="steps",
                   help="steps (default): windows join and leave the running batch at every "
                        "decoder step (greedy decoding of onnx/openvino/torchscript/tensorrt "
                        "artifacts; others use windows); windows: a batch runs until its "
                        "last transcript ends")


def _add_limit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-queue", type=int, default=64,
                   help="requests admitted at once; more get 503 (default 64)")
    p.add_argument("--max-upload-mb", type=float, default=25.0, help="default 25 (as OpenAI)")
    p.add_argument("--timeout", type=float, default=120.0, help="per-request seconds (default 120)")
    p.add_argument("--max-audio-s", type=float, default=3 * 3600.0,
                   help="most seconds an upload may decode to (default 10800 = 3 h); never "
                   "more than 1 s per 64 bytes of upload, so a tiny file claiming hours is "
                   "refused with 413 after decoding only that much")
    p.add_argument("--max-subtitle-s", type=float, default=None, metavar="S",
                   help=SUBTITLE_HELP)


def _add_runtime_arguments(p: argparse.ArgumentParser) -> None:
    """The runtime flags every command shares (``runtimes.cli``), and the server's decoding."""
    add_runtime_arguments(p)
    p.add_argument("--beam-size", type=int, default=1, help=BEAM_HELP)
    # a request with temperature 0 (OpenAI's default) gets the ladder; above 0 it is sampled
    add_fallback_arguments(p)
    p.add_argument("--temperature-fallback", action="store_true",
                   help=argparse.SUPPRESS)  # the default now; accepted for older scripts


def _add_ray_arguments(p: argparse.ArgumentParser) -> None:
    ray = p.add_argument_group("Ray Serve (the 'ray' extra): replicas behind one address")
    ray.add_argument("--ray", action="store_true",
                     help="serve as a Ray Serve application: each replica loads the model and "
                     "batches its own requests; Serve's proxy spreads requests over them")
    scale = ray.add_mutually_exclusive_group()
    scale.add_argument("--replicas", type=int, help="replicas (default 1)")
    scale.add_argument("--autoscale", type=int, nargs=2, metavar=("MIN", "MAX"),
                       help="let Serve scale between MIN and MAX replicas, aiming at "
                       "--max-batch-size requests per replica")
    ray.add_argument("--address", help=ADDRESS_HELP)
    ray.add_argument("--cpus-per-replica", type=float, default=1.0,
                     help="CPUs Ray reserves per replica (default 1); --threads defaults to it")
    ray.add_argument("--gpus-per-replica", type=float, default=None,
                     help="GPUs per replica (default: 1 with --device cuda: one model per GPU)")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import uvicorn

        import runtimes
        from runtimes.serve.app import create_app
        from runtimes.serve.config import ServeConfig
        from runtimes.serve.engine import ServeEngine
    except ImportError as exc:
        print(f"error: serving needs the 'serve' extra ({exc.name} is missing): "
              "pip install -e '.[serve]'", file=sys.stderr)
        return 2
    try:
        config = ServeConfig(args.model_id or args.artifact.resolve().name, args.api_key,
                             args.max_batch_size, args.max_wait_ms, args.batching,
                             args.max_queue, args.max_upload_mb, args.timeout, args.max_audio_s,
                             args.max_subtitle_s)
        if not 0 < args.port < 65536:
            raise ToolkitError(f"port {args.port} is not in 1..65535")
        # the server decodes uploads beside the model: idle runtime threads should sleep
        options = replace(runtime_options(args), shared_cores=True)
        decoding = fitted(args.artifact, runtimes.DecodingOptions(
            args.beam_size, **fallback_fields(args)), args)
        if args.ray or args.replicas is not None or args.autoscale or args.address:
            return _serve_on_ray(args, config, options, decoding)
        model = runtimes.load(args.artifact, options, decoding)
        if config.max_subtitle_s is not None:
            model.runtime.check_aligns()  # subtitles are cut at word timestamps
        engine = ServeEngine(model, config.max_batch_size, config.max_wait_ms / 1000,
                             batching=config.batching,
                             batch_invariant=runtimes.batch_invariant(args.artifact))
        engine.warm_up()
    except ToolkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _warn_if_open(args.host, config)
    batching = ("off" if config.max_batch_size == 1 else
                f"up to {config.max_batch_size} windows, {config.max_wait_ms:g} ms wait, "
                f"joining {'at every decoder step' if engine.batching == 'steps' else 'per batch'}"
                + ("" if engine.mixes_requests else
                   ", one request's windows per batch: this precision is batch-variant"))
    print(f"serving {args.artifact} as {config.model_id!r} on http://{args.host}:{args.port}/v1 "
          f"(dynamic batching {batching})", file=sys.stderr, flush=True)
    uvicorn.run(create_app(engine, config), host=args.host, port=args.port,
                log_level=args.log_level, timeout_graceful_shutdown=5)
    return 0


def _warn_if_open(host: str, config) -> None:
    if not _is_loopback(host) and config.api_key is None:
        print(f"warning: serving on {host} without an API key: anyone who can reach this "
              f"port can use it (set --api-key or ${API_KEY_ENV})", file=sys.stderr)


def _serve_on_ray(args: argparse.Namespace, config, options, decoding) -> int:
    """``--ray``: check everything here, then deploy the replicas (``runtimes.serve.ray_app``)."""
    import runtimes

    if not args.ray:
        raise ToolkitError("--replicas, --autoscale and --address need --ray")
    try:
        from runtimes.serve import ray_app
    except ImportError as exc:
        raise ToolkitError(f"--ray needs the 'ray' extra ({exc.name} is missing): "
                           "pip install -e '.[ray]'") from exc
    from runtimes.cluster import check_address, check_before_scheduling, default_gpus

    replicas = 1 if args.replicas is None else args.replicas
    scaling = ray_app.Scaling(tuple(args.autoscale) if args.autoscale else replicas,
                              args.cpus_per_replica,
                              default_gpus(args.device, args.gpus_per_replica))
    if args.address:
        check_address(args.address)
    check_before_scheduling(args.artifact, options, decoding,
                            aligns=config.max_subtitle_s is not None)
    app = ray_app.application(args.artifact, options, decoding, config,
                              runtimes.batch_invariant(args.artifact), scaling)
    _warn_if_open(args.host, config)
    count = (f"{scaling.replicas[0]}-{scaling.replicas[1]} replicas (autoscaled)"
             if isinstance(scaling.replicas, tuple) else f"{scaling.replicas} replica(s)")
    ray_app.run(app, args.host, args.port, config, args.address, args.log_level,
                lambda: print(f"serving {args.artifact} as {config.model_id!r} on "
                              f"http://{args.host}:{args.port}/v1 with Ray Serve, {count}, "
                              f"each batching up to {config.max_batch_size} windows",
                              file=sys.stderr, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
