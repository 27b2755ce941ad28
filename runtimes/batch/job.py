"""The Ray Data pipeline of ``python -m runtimes.batch``.

    paths (driver) -> read, decode, cut into VAD windows (CPU tasks, one per file)
          -> transcribe (a pool of actors, each loads the artifact once; ``files_per_call``
             files per call, their windows batched ``batch_size`` at a time, as
             ``python -m runtimes`` batches them, so the transcripts are the same)
          -> rows streamed back to the driver, which writes them (``store``)

Decoding runs where the audio is, in parallel with the model, and only windows travel to
the actors. Ray retries a task whose worker died and restarts a killed actor (Ray Data's
default ``max_restarts=-1`` for actor pools), re-running the batch it held; the driver's
store writes a path at most once, so a retried batch cannot duplicate a file.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from runtimes.base import DecodingOptions, RuntimeOptions
from runtimes.batch.store import ResultStore
from runtimes.cluster import check_address, check_before_scheduling, count_range, worker_options
from runtimes.errors import OptionError, ToolkitError

#: What a decoding task reserves: no CPU, since actors may hold every CPU of the cluster
#: (two one-CPU actors on two cores deadlocked the job when decoding asked for one; how
#: many decode at once is ``JobOptions.decoders`` instead: unbounded, Ray started a worker
#: process per file and the job ran 3x slower on two cores), and the memory of an hour of
#: 16 kHz float32 (230 MB). Unequal requests also keep Ray Data from fusing the tasks into
#: the actors, so audio decodes beside the model rather than in its turn.
DECODE_MEMORY = 256 * 1024 * 1024


@dataclass(frozen=True)
class JobOptions:
    """How a batch job is spread over Ray.

    Attributes:
        actors: transcribing actors (one model each); an (min, max) pair autoscales.
        cpus_per_actor: CPUs Ray reserves for each actor (its runtime's threads default
            to this many).
        gpus_per_actor: GPUs Ray reserves for each actor (1 = one model per GPU).
        files_per_call: files an actor transcribes per call (their windows share batches).
        decoders: decoding tasks at once (each a worker process reading, decoding and
            cutting one file); default: one per actor (the most actors when autoscaled).
        batch_size: windows per model call, as ``python -m runtimes --batch-size``.
        address: a running cluster to join ("auto", "HOST:PORT", "ray://HOST:PORT");
            None starts a local Ray for the job and stops it after.
        flush_every: result rows per Parquet part.
        pack: short clips of one actor call share 30 s windows (``--pack``,
            docs/packing.md); the artifact must align words.
    """

    actors: int | tuple[int, int] = 1
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    files_per_call: int = 16
    decoders: int | None = None
    batch_size: int = 8
    address: str | None = None
    flush_every: int = 256
    pack: bool = False

    def __post_init__(self) -> None:
        if count_range(self.actors) is None:
            raise OptionError(f"actors must be a count >= 1 (or MIN <= MAX), got {self.actors!r}")
        for name in ("files_per_call", "batch_size", "flush_every"):
            if getattr(self, name) < 1:
                raise OptionError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.decoders is not None and self.decoders < 1:
            raise OptionError(f"decoders must be >= 1, got {self.decoders!r}")
        if not self.cpus_per_actor > 0 or self.gpus_per_actor < 0:
            raise OptionError(f"cpus_per_actor must be > 0 and gpus_per_actor >= 0, got "
                              f"{self.cpus_per_actor!r} and {self.gpus_per_actor!r}")


@dataclass(frozen=True)
class Summary:
    """What a run did (the CLI prints it; figures are this run's only)."""

    files: int  # transcribed in this run
    skipped: int  # already in the output
    failures: int
    audio_s: float
    wall_s: float
    duplicates: int  # rows a retried batch delivered twice (written once)

    @property
    def rtfx(self) -> float:
        return self.audio_s / self.wall_s if self.wall_s else 0.0

    def line(self) -> str:
        return (f"{self.files} files transcribed ({self.audio_s / 3600:.3f} h of audio) in "
                f"{self.wall_s:.1f} s: RTFx {self.rtfx:.1f}; {self.skipped} already done, "
                f"{self.failures} failed" + (f", {self.duplicates} duplicate deliveries dropped"
                                             if self.duplicates else ""))


def job_identity(artifact: Path, options: RuntimeOptions, decoding: DecodingOptions,
                 pack: bool = False) -> dict:
    """What a result depends on: an output directory holds results of one identity only
    (a packed clip's text depends on its neighbours, so packing is part of it)."""
    from dataclasses import asdict

    from runtimes.artifacts.manifest import MANIFEST, manifest_digest

    pinned = (manifest_digest(artifact) if (artifact / MANIFEST).is_file()
              else f"directory {artifact.resolve()}")
    return {"artifact": pinned, "device": options.device, "precision": options.precision,
            "decoding": json.loads(json.dumps(asdict(decoding))),
            **({"pack": True} if pack else {})}


def run_job(artifact: Path, paths: list[Path], out: Path, options: RuntimeOptions,
            decoding: DecodingOptions, job: JobOptions, log=print) -> Summary:
    """Transcribe ``paths`` into ``out`` (see the module docstring); files already there are
    skipped. The artifact is checked (and, on a CPU, loaded once) before anything is
    scheduled.

    Raises:
        OptionError: a bad address or output directory.
        ToolkitError: an artifact that does not load.
    """
    if job.address is not None:
        check_address(job.address)  # first: seconds, where loading a large model takes more
    identity = job_identity(artifact, options, decoding, job.pack)
    check_before_scheduling(artifact, options, decoding, pack=job.pack)
    with ResultStore(out, identity, job.flush_every) as store:
        todo = [str(p) for p in paths if str(p) not in store.done]
        skipped = len(paths) - len(todo)
        log(f"{len(paths)} files: {skipped} already in {out}, {len(todo)} to transcribe")
        start = time.perf_counter()
        audio_s, duplicates = 0.0, 0
        if todo:
            for row in _stream(artifact, todo, options, decoding, job):
                if row["error"]:
                    store.fail(row["path"], row["stage"], row["error"])
                    continue
                result = json.loads(row["result"])
                if store.add(result):
                    audio_s += result["duration_s"]
                else:
                    duplicates += 1
        summary = Summary(store.written, skipped, len(store.failed), audio_s,
                          time.perf_counter() - start, duplicates)
    return summary


def _stream(artifact: Path, todo: list[str], options: RuntimeOptions,
            decoding: DecodingOptions, job: JobOptions):
    """The pipeline's output rows as they finish (Ray started or joined for the call)."""
    import ray

    from runtimes.batch.tasks import Transcribe, decode_file

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=job.address, include_dashboard=False, logging_level="WARNING",
                 configure_logging=True)
    try:
        options = worker_options(options, job.cpus_per_actor)
        low, high = count_range(job.actors)
        ds = ray.data.from_items([{"path": p} for p in todo],
                                 override_num_blocks=min(len(todo), 512))
        ds = ds.map(decode_file, fn_kwargs={"cut_windows": decoding.long_form == "vad",
                                            "pack": job.pack},
                    num_cpus=0, memory=DECODE_MEMORY,
                    compute=ray.data.TaskPoolStrategy(size=job.decoders or high))
        ds = ds.map_batches(Transcribe,
                            fn_constructor_args=(str(artifact), options, decoding,
                                                 job.batch_size, job.pack),
                            batch_size=job.files_per_call, batch_format="numpy",
                            compute=ray.data.ActorPoolStrategy(min_size=low, max_size=high),
                            num_cpus=job.cpus_per_actor, num_gpus=job.gpus_per_actor or None)
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            yield from ({"path": str(p), "result": str(r), "error": str(e), "stage": str(s)}
                        for p, r, e, s in zip(batch["path"], batch["result"], batch["error"],
                                              batch["stage"]))
    except ray.exceptions.RayError as exc:
        raise ToolkitError(f"the Ray job failed: {exc}") from exc
    finally:
        if started_here:
            ray.shutdown()
