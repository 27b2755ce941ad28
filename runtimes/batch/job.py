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

import numpy as np

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
    """

    actors: int | tuple[int, int] = 1
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    files_per_call: int = 16
    decoders: int | None = None
    batch_size: int = 8
    address: str | None = None
    flush_every: int = 256

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


def job_identity(artifact: Path, options: RuntimeOptions, decoding: DecodingOptions) -> dict:
    """What a result depends on: an output directory holds results of one identity only."""
    from dataclasses import asdict

    from runtimes.artifacts.manifest import MANIFEST, manifest_digest

    pinned = (manifest_digest(artifact) if (artifact / MANIFEST).is_file()
              else f"directory {artifact.resolve()}")
    return {"artifact": pinned, "device": options.device, "precision": options.precision,
            "decoding": json.loads(json.dumps(asdict(decoding)))}


def decode_file(row: dict, cut_windows: bool) -> dict:
    """CPU task: one file's audio, cut into VAD windows when ``cut_windows`` (else whole,
    for sequential decoding); a file that does not decode becomes a row with its error."""
    from runtimes.audio.files import AudioReport, duration_s, load_audio
    from runtimes.transcript.pipeline import cut

    path = row["path"]
    empty = {"path": path, "duration_s": 0.0, "samples": np.zeros(0, np.float32),
             "lengths": np.zeros(0, np.int64), "spans": "[]", "declared_s": np.nan,
             "skipped_frames": 0}
    report = AudioReport()
    try:
        audio = load_audio(path, report=report)
    except Exception as exc:  # any decoder failure is this file's, not the job's
        return {**empty, "error": f"{type(exc).__name__}: {exc}"}
    windows = cut(audio) if cut_windows else [(((0, audio.size),), audio)]
    return {"path": path, "duration_s": duration_s(audio), "error": "",
            # a damaged file transcribed past its damage says so in its row (issue 32)
            "declared_s": np.nan if report.declared_s is None else report.declared_s,
            "skipped_frames": report.skipped_frames,
            "samples": np.concatenate([w for _, w in windows]).astype(np.float32)
            if windows else np.zeros(0, np.float32),
            "lengths": np.array([w.size for _, w in windows], np.int64),
            "spans": json.dumps([[list(span) for span in spans] for spans, _ in windows])}


class Transcribe:
    """Actor: loads the artifact once, then transcribes batches of decoded files.

    Each output row is the file's path, its result row as JSON (``store`` fields) or "",
    and its error or "" (``stage`` says where it failed)."""

    def __init__(self, artifact: str, options: RuntimeOptions, decoding: DecodingOptions,
                 batch_size: int) -> None:
        import runtimes

        self.model = runtimes.load(artifact, options, decoding)
        self.batch_size = batch_size
        self.sequential = decoding.long_form == "sequential"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        out: dict[str, list] = {"path": [], "result": [], "error": [], "stage": []}
        ok = [i for i, error in enumerate(batch["error"]) if not error]
        for i, error in enumerate(batch["error"]):
            if error:
                self._emit(out, batch["path"][i], "", error, "decode")
        if ok:
            self._transcribe(batch, ok, out)
        return out

    def _transcribe(self, batch: dict[str, np.ndarray], rows: list[int], out: dict) -> None:
        """All rows in one call; if that fails, each alone, so one bad file fails alone."""
        try:
            self._run(batch, rows, out)
        except Exception:
            if len(rows) == 1:
                import traceback

                error = traceback.format_exc(limit=-1).strip().splitlines()[-1]
                self._emit(out, batch["path"][rows[0]], "", error, "transcribe")
                return
            for i in rows:
                self._transcribe(batch, [i], out)

    def _run(self, batch: dict[str, np.ndarray], rows: list[int], out: dict) -> None:
        start = time.perf_counter()
        inputs = [_windows(batch, i) for i in rows]
        durations = [float(batch["duration_s"][i]) for i in rows]
        if self.sequential:
            found = self.model.transcribe([w[0][1] if w else np.zeros(0, np.float32)
                                           for w in inputs], self.batch_size)
        else:
            found = self.model.transcribe_cut(inputs, durations, self.batch_size)
        seconds = time.perf_counter() - start
        total = sum(durations) or 1.0
        for i, result, duration in zip(rows, found, durations):
            row = result_row(str(batch["path"][i]), result, self.model.runtime,
                             seconds * duration / total)
            declared = float(batch["declared_s"][i])
            row["declared_s"] = None if np.isnan(declared) else round(declared, 3)
            row["skipped_frames"] = int(batch["skipped_frames"][i])
            self._emit(out, batch["path"][i], json.dumps(row, ensure_ascii=False), "", "")

    @staticmethod
    def _emit(out: dict, path, result: str, error: str, stage: str) -> None:
        out["path"].append(str(path))
        out["result"].append(result)
        out["error"].append(str(error))
        out["stage"].append(stage)


def _windows(batch: dict[str, np.ndarray], i: int) -> list:
    """Row ``i``'s windows as ``runtimes.transcript.pipeline.cut`` gave them."""
    samples = np.asarray(batch["samples"][i], np.float32)
    bounds = np.cumsum([0, *np.asarray(batch["lengths"][i]).tolist()])
    spans = json.loads(batch["spans"][i])
    return [(tuple(tuple(s) for s in window), samples[a:b])
            for window, a, b in zip(spans, bounds[:-1], bounds[1:])]


def result_row(path: str, result, runtime, seconds: float) -> dict:
    """One file's output row (the JSONL object; the Parquet columns). ``seconds``: its share
    of its actor call's wall time, by duration."""
    from runtimes.transcript.formats import segment_json

    return {"path": path, "duration_s": round(result.duration_s, 3),
            "language": result.language, "text": result.text,
            "segments": [segment_json(s) for s in result.segments],
            "windows": result.windows, "runtime": runtime.format,
            "precision": runtime.precision, "seconds": round(seconds, 4)}


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
    identity = job_identity(artifact, options, decoding)
    check_before_scheduling(artifact, options, decoding)
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

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=job.address, include_dashboard=False, logging_level="WARNING",
                 configure_logging=True)
    try:
        options = worker_options(options, job.cpus_per_actor)
        low, high = count_range(job.actors)
        ds = ray.data.from_items([{"path": p} for p in todo],
                                 override_num_blocks=min(len(todo), 512))
        ds = ds.map(decode_file, fn_kwargs={"cut_windows": decoding.long_form == "vad"},
                    num_cpus=0, memory=DECODE_MEMORY,
                    compute=ray.data.TaskPoolStrategy(size=job.decoders or high))
        ds = ds.map_batches(Transcribe,
                            fn_constructor_args=(str(artifact), options, decoding,
                                                 job.batch_size),
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
