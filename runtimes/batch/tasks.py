"""The per-file work of a batch job (``runtimes.batch.job``): decoding and cutting a file
(a CPU task), and the actor that transcribes decoded files and makes their result rows.
Plain functions and classes: Ray runs them, and a test can call them directly."""

from __future__ import annotations

import json
import time

import numpy as np

from runtimes.base import DecodingOptions, RuntimeOptions


def decode_file(row: dict, cut_windows: bool, pack: bool = False) -> dict:
    """CPU task: one file's audio, cut into VAD windows when ``cut_windows`` (else whole,
    for sequential decoding); with ``pack``, a clip that may share a window with others
    (``runtimes.transcript.packing.packable``) stays whole and is marked ``packable``. A
    file that does not decode becomes a row with its error."""
    from runtimes.audio.files import AudioReport, duration_s, load_audio
    from runtimes.transcript.packing import packable
    from runtimes.transcript.pipeline import cut

    path = row["path"]
    empty = {"path": path, "duration_s": 0.0, "samples": np.zeros(0, np.float32),
             "lengths": np.zeros(0, np.int64), "spans": "[]", "declared_s": np.nan,
             "skipped_frames": 0, "packable": False}
    report = AudioReport()
    try:
        audio = load_audio(path, report=report)
    except Exception as exc:  # any decoder failure is this file's, not the job's
        return {**empty, "error": f"{type(exc).__name__}: {exc}"}
    packed = pack and packable(audio)
    windows = [(((0, audio.size),), audio)] if packed or not cut_windows else cut(audio)
    return {"path": path, "duration_s": duration_s(audio), "error": "",
            # a damaged file transcribed past its damage says so in its row (issue 32)
            "declared_s": np.nan if report.declared_s is None else report.declared_s,
            "skipped_frames": report.skipped_frames,
            "samples": np.concatenate([w for _, w in windows]).astype(np.float32)
            if windows else np.zeros(0, np.float32),
            "lengths": np.array([w.size for _, w in windows], np.int64),
            "spans": json.dumps([[list(span) for span in spans] for spans, _ in windows]),
            "packable": packed}


class Transcribe:
    """Actor: loads the artifact once, then transcribes batches of decoded files.

    Each output row is the file's path, its result row as JSON (``store`` fields) or "",
    and its error or "" (``stage`` says where it failed)."""

    def __init__(self, artifact: str, options: RuntimeOptions, decoding: DecodingOptions,
                 batch_size: int, pack: bool = False) -> None:
        import runtimes

        self.model = runtimes.load(artifact, options, decoding)
        self.batch_size = batch_size
        self.sequential = decoding.long_form == "sequential"
        self.pack = pack

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
        durations = {i: float(batch["duration_s"][i]) for i in rows}
        found = dict(self._packed(batch, rows))
        rest = [i for i in rows if i not in found]
        inputs = [_windows(batch, i) for i in rest]
        if self.sequential:
            found.update(zip(rest, self.model.transcribe(
                [w[0][1] if w else np.zeros(0, np.float32) for w in inputs], self.batch_size)))
        else:
            found.update(zip(rest, self.model.transcribe_cut(
                inputs, [durations[i] for i in rest], self.batch_size)))
        seconds = time.perf_counter() - start
        total = sum(durations.values()) or 1.0
        for i, duration in durations.items():
            row = result_row(str(batch["path"][i]), found[i], self.model.runtime,
                             seconds * duration / total)
            declared = float(batch["declared_s"][i])
            row["declared_s"] = None if np.isnan(declared) else round(declared, 3)
            row["skipped_frames"] = int(batch["skipped_frames"][i])
            self._emit(out, batch["path"][i], json.dumps(row, ensure_ascii=False), "", "")

    def _packed(self, batch: dict[str, np.ndarray], rows: list[int]):
        """(row, result) of the call's packable clips, decoded in shared windows as
        ``python -m runtimes --pack`` decodes them: a clip that packing gives back (or a
        call's only clip) is decoded there as it would be without ``pack``."""
        clips = [i for i in rows if self.pack and batch["packable"][i]]
        if not clips:
            return iter(())
        audio = [np.asarray(batch["samples"][i], np.float32) for i in clips]
        return zip(clips, self.model.transcribe(audio, self.batch_size, pack=True))

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
