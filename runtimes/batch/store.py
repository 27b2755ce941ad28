"""A batch job's output directory: what it holds, how a rerun resumes, and one row's shape.

    OUT/job.json        the artifact and decoding settings the results were made with
    OUT/results.jsonl   one JSON object per transcribed file, appended and flushed as it
                        finishes: the record a rerun resumes from
    OUT/parquet/part-NNNNN.parquet   the same rows, written every ``flush_every`` rows
    OUT/failures.jsonl  this run's files that failed (path, stage, error); retried by a rerun

The driver writes every row itself, as results stream in from the actors: rows are small
(text and times, never audio), and one writer is what makes "no file lost or written
twice" checkable: a path is written once per directory, whatever Ray retried. A run killed
mid-line leaves a truncated last line, which the next run cuts off (that file is redone);
rows already in JSONL but not yet in Parquet are written to a new part on resume.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from runtimes.errors import OptionError

JOB = "job.json"
RESULTS = "results.jsonl"
FAILURES = "failures.jsonl"
PARQUET = "parquet"


def parquet_schema():
    """The Parquet columns (fixed, so every part and every run reads as one table)."""
    import pyarrow as pa

    word = pa.struct([("start", pa.float64()), ("end", pa.float64()), ("word", pa.string()),
                      ("probability", pa.float64())])
    segment = pa.struct([("start", pa.float64()), ("end", pa.float64()), ("text", pa.string()),
                         ("temperature", pa.float64()), ("avg_logprob", pa.float64()),
                         ("compression_ratio", pa.float64()),
                         ("no_speech_prob", pa.float64()), ("words", pa.list_(word))])
    return pa.schema([("path", pa.string()), ("duration_s", pa.float64()),
                      ("declared_s", pa.float64()), ("skipped_frames", pa.int32()),
                      ("language", pa.string()), ("text", pa.string()),
                      ("segments", pa.list_(segment)), ("windows", pa.int32()),
                      ("runtime", pa.string()), ("precision", pa.string()),
                      ("seconds", pa.float64())])


class ResultStore:
    """The output directory of one job (see the module docstring).

    Args:
        out: the directory; created if missing.
        job: what makes results comparable (artifact identity, decoding settings): a
            directory holding another job's results is refused.
        flush_every: rows per Parquet part.

    Raises:
        OptionError: ``out`` is a file, holds another job's results, or holds files that
            are not a batch job's.
    """

    def __init__(self, out: Path, job: dict, flush_every: int = 256) -> None:
        self.out = Path(out)
        self.flush_every = flush_every
        self._check_directory(job)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / PARQUET).mkdir(exist_ok=True)
        (self.out / JOB).write_text(json.dumps(job, indent=1, sort_keys=True) + "\n")
        rows = _read_rows(self.out / RESULTS, repair=True)
        self.done: set[str] = {row["path"] for row in rows}
        self._pending = self._not_in_parquet(rows)
        self._flush_parquet()
        self._results = open(self.out / RESULTS, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())
        self._failures = open(self.out / FAILURES, "w", encoding="utf-8")  # noqa: SIM115
        self.written = 0
        self.failed: list[dict] = []

    def _check_directory(self, job: dict) -> None:
        if self.out.exists() and not self.out.is_dir():
            raise OptionError(f"--out {self.out} is a file, not a directory")
        if not self.out.is_dir() or not any(self.out.iterdir()):
            return
        if not (self.out / JOB).is_file():
            raise OptionError(f"--out {self.out} holds files that are not a batch job's results "
                              f"(no {JOB}); use an empty or new directory")
        earlier = json.loads((self.out / JOB).read_text())
        if earlier != job:
            changed = sorted(k for k in set(earlier) | set(job) if earlier.get(k) != job.get(k))
            raise OptionError(f"--out {self.out} holds another job's results (its {JOB} differs "
                              f"in {', '.join(changed)}); use a new directory, or the same "
                              f"artifact and settings to resume")

    def add(self, row: dict) -> bool:
        """Record one file's result; False (and nothing written) if its path already is."""
        if row["path"] in self.done:
            return False
        self._results.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._results.flush()
        self.done.add(row["path"])
        self._pending.append(row)
        self.written += 1
        if len(self._pending) >= self.flush_every:
            self._flush_parquet()
        return True

    def fail(self, path: str, stage: str, error: str) -> None:
        """Record a file that could not be transcribed (the job goes on)."""
        entry = {"path": path, "stage": stage, "error": error}
        self._failures.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._failures.flush()
        self.failed.append(entry)

    def close(self) -> None:
        self._flush_parquet()
        self._results.close()
        self._failures.close()

    def _not_in_parquet(self, rows: list[dict]) -> list[dict]:
        import pyarrow.parquet as pq

        stored: set[str] = set()
        for part in sorted((self.out / PARQUET).glob("part-*.parquet")):
            stored.update(pq.read_table(part, columns=["path"]).column("path").to_pylist())
        return [row for row in rows if row["path"] not in stored]

    def _flush_parquet(self) -> None:
        """Write the pending rows as the next part (to a temporary name, then renamed, so
        a part is whole or absent)."""
        if not self._pending:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        parts = self.out / PARQUET
        index = 1 + max((int(p.stem.split("-")[1]) for p in parts.glob("part-*.parquet")),
                        default=-1)
        target = parts / f"part-{index:05d}.parquet"
        rows = [_with_words(row) for row in self._pending]
        pq.write_table(pa.Table.from_pylist(rows, schema=parquet_schema()), f"{target}.tmp")
        os.replace(f"{target}.tmp", target)
        self._pending = []

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _with_words(row: dict) -> dict:
    """The row with every segment's "words" present (an empty list where not aligned)."""
    return {**row, "segments": [{"words": [], **s} for s in row["segments"]]}


def _read_rows(path: Path, repair: bool = False) -> list[dict]:
    """The complete rows of results.jsonl; with ``repair``, a truncated last line (a killed
    run) is cut off the file so appending resumes on a line boundary."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if repair and end < len(data):
        with open(path, "r+b") as f:
            f.truncate(end)
    return [json.loads(line) for line in data[:end].decode("utf-8").splitlines() if line]


def read_results(out: Path) -> list[dict]:
    """Every row of a job's results.jsonl (tests and the summary read them back)."""
    return _read_rows(Path(out) / RESULTS)
