"""Whisper's special tokens and the decoder prompt, read from ``tokenizer.json``.

Reading ids from the tokenizer (instead of hard-coding 50257 and friends) keeps English-only,
multilingual and large-v3 vocabularies (whose ids differ by one or two) all correct.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from runtimes.errors import ArtifactError, OptionError

TOKENIZER_FILE = "tokenizer.json"
#: Previous-text tokens kept, so that 1 + this + a 4-token prompt + 224 new tokens stay
#: within the decoder's 448 positions (openai/whisper keeps up to 223 and may overflow).
MAX_PREVIOUS_TOKENS = 200


@dataclass(frozen=True)
class WhisperTokenizer:
    """Fast BPE tokenizer plus the special ids the decoding loop needs.

    Attributes:
        path: the ``tokenizer.json`` file.
        multilingual: whether the model was trained with language/task tokens.
    """

    path: Path
    multilingual: bool

    @cached_property
    def _tok(self):
        from tokenizers import Tokenizer

        try:
            return Tokenizer.from_file(str(self.path))
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            raise ArtifactError(f"cannot read tokenizer {self.path}: {exc}") from exc

    def token_id(self, token: str) -> int:
        """Id of a special token such as ``<|en|>``; ArtifactError if it is absent."""
        token_id = self._tok.token_to_id(token)
        if token_id is None:
            raise ArtifactError(f"token {token!r} is missing from {self.path}")
        return token_id

    @cached_property
    def eot(self) -> int:
        return self.token_id("<|endoftext|>")

    @cached_property
    def sot(self) -> int:
        return self.token_id("<|startoftranscript|>")

    @cached_property
    def no_timestamps(self) -> int:
        return self.token_id("<|notimestamps|>")

    def language_id(self, language: str) -> int:
        """Id of ``<|language|>``; OptionError naming the language if the model lacks it."""
        token_id = self._tok.token_to_id(f"<|{language}|>")
        if token_id is None or not self.multilingual:
            raise OptionError(f"language {language!r} is not supported by this model")
        return token_id

    def prompt(self, language: str | None, task: str, timestamps: bool = False) -> list[int]:
        """The forced decoder prefix: sot [language task] [notimestamps].

        English-only models take no language or task token (openai/whisper does the same);
        with ``timestamps`` the prompt leaves <|notimestamps|> out, so the model starts
        with a timestamp.
        """
        tail = [] if timestamps else [self.no_timestamps]
        if not self.multilingual:
            return [self.sot, *tail]
        if language is None:
            raise OptionError("a multilingual model needs a language (or detection) first")
        task_id = self.token_id(f"<|{task}|>")
        return [self.sot, self.language_id(language), task_id, *tail]

    @cached_property
    def timestamp_begin(self) -> int:
        """Id of <|0.00|>, the first timestamp token (the one after <|notimestamps|>)."""
        return self.no_timestamps + 1

    def previous_text(self, text: str, max_tokens: int = MAX_PREVIOUS_TOKENS) -> list[int]:
        """``<|startofprev|>`` + the last ``max_tokens`` tokens of ``text``: Whisper's way of
        conditioning on earlier text (OpenAI's ``prompt``); prepend it to ``prompt()``."""
        ids = self.text_ids(text)
        return [self.token_id("<|startofprev|>"), *ids[-max_tokens:]] if ids else []

    def text_ids(self, text: str) -> list[int]:
        """Ids of ``text`` as a continuation (one leading space)."""
        return self._tok.encode(" " + text.strip(), add_special_tokens=False).ids

    def context(self, previous: list[int], hotwords: str | None = None) -> list[int]:
        """What a window is conditioned on, to prepend to ``prompt()``: ``<|startofprev|>``,
        the hotwords' ids, then the last of ``previous`` (faster-whisper's order; its
        ``hotwords`` is this prompt, not a bias on the logits), at most
        ``MAX_PREVIOUS_TOKENS`` in all, the hotwords kept first; [] when both are empty."""
        hot = self.text_ids(hotwords)[:MAX_PREVIOUS_TOKENS] if hotwords else []
        room = MAX_PREVIOUS_TOKENS - len(hot)
        kept = list(previous[-room:]) if room and previous else []
        return [self.token_id("<|startofprev|>"), *hot, *kept] if hot or kept else []

    def decode(self, ids: list[int]) -> str:
        """Text of generated ids, special tokens dropped, outer spaces stripped."""
        return self._tok.decode([i for i in ids if i < self.eot], skip_special_tokens=True).strip()


    def decode_raw(self, ids: list[int]) -> str:
        """Text of ids as the vocabulary spells them, leading space kept (word timestamps
        split words at it)."""
        return self._tok.decode([i for i in ids if i < self.eot], skip_special_tokens=True)


def load_tokenizer(model_dir: Path, multilingual: bool) -> WhisperTokenizer:
    """Tokenizer of an artifact or model directory; ArtifactError if the file is missing."""
    path = Path(model_dir) / TOKENIZER_FILE
    if not path.is_file():
        raise ArtifactError(f"{model_dir} has no {TOKENIZER_FILE}")
    return WhisperTokenizer(path, multilingual)
