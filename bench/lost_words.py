"""Which reference words each row lost that faster-whisper's batched pipeline kept, and the
reverse, recording by recording.

Why: two WERs a few words apart say nothing of where the words went. Listed per recording,
the words show whether a window's end, a prompt or a misheard name cost them, and whether
the two systems lose the same words (noise in the arithmetic) or different ones.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

#: The row the others are compared with (its ``runtime`` column).
COMPARATOR = "faster-whisper batched"
#: Words shown per cell; the rest are counted.
SHOWN = 12


def lost(reference: str, hypothesis: str, language: str) -> list[int]:
    """Indices of the normalised reference's words that the hypothesis does not keep
    (deleted or replaced in difflib's alignment of the two word lists)."""
    from bench.metrics import normalizer

    ref = normalizer(language)(reference).split()
    hyp = normalizer(language)(hypothesis).split()
    matcher = difflib.SequenceMatcher(a=ref, b=hyp, autojunk=False)
    return [i for tag, i1, i2, _, _ in matcher.get_opcodes() if tag in ("delete", "replace")
            for i in range(i1, i2)]


def section(rows: Sequence, clips: Sequence) -> str:
    """A Markdown table of the words each row lost and the comparator kept, and the
    reverse, for every clip where they differ; "" without a comparator row."""
    from bench.metrics import normalizer

    comparator = next((r for r in rows if r.runtime == COMPARATOR and r.texts), None)
    if comparator is None:
        return ""
    theirs = [set(lost(c.reference, t, c.language)) if c.reference else set()
              for c, t in zip(clips, comparator.texts)]
    lines = []
    for row in rows:
        if row is comparator or not row.texts:
            continue
        for clip, ours, other in zip(clips, row.texts, theirs):
            if not clip.reference:
                continue
            words = normalizer(clip.language)(clip.reference).split()
            mine = set(lost(clip.reference, ours, clip.language))
            if mine != other:
                lines.append(f"| {clip.id} | {row.name} | {_words(words, mine - other)} | "
                             f"{_words(words, other - mine)} |")
    if not lines:
        return f"\nNo row lost other reference words than {comparator.name}.\n"
    return (f"\n### Reference words lost against {comparator.name}\n\n"
            f"| clip | row | lost here, kept by {comparator.name} | kept here, lost by it |\n"
            f"|---|---|---|---|\n" + "\n".join(lines) + "\n")


def _words(words: list[str], indices: set[int]) -> str:
    shown = [f"{words[i]}@{i}" for i in sorted(indices)[:SHOWN]]
    more = len(indices) - len(shown)
    return (" ".join(shown) or "—") + (f" (+{more})" if more > 0 else "")
