"""Whisper's language codes and their English names (as openai/whisper lists them).

The server answers ``verbose_json`` with the name ("english"), as OpenAI's API does, and
checks a requested ``language`` against these codes before any audio is decoded.
"""

LANGUAGES: dict[str, str] = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian", "ko": "korean",
    "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish", "pl": "polish",
    "ca": "catalan", "nl": "dutch", "ar": "arabic", "sv": "swedish", "it": "italian",
    "id": "indonesian", "hi": "hindi", "fi": "finnish", "vi": "vietnamese", "he": "hebrew",
    "uk": "ukrainian", "el": "greek", "ms": "malay", "cs": "czech", "ro": "romanian", "da": "danish",
    "hu": "hungarian", "ta": "tamil", "no": "norwegian", "th": "thai", "ur": "urdu", "hr": "croatian",
    "bg": "bulgarian", "lt": "lithuanian", "la": "latin", "mi": "maori", "ml": "malayalam",
    "cy": "welsh", "sk": "slovak", "te": "telugu", "fa": "persian", "lv": "latvian", "bn": "bengali",
    "sr": "serbian", "az": "azerbaijani", "sl": "slovenian", "kn": "kannada", "et": "estonian",
    "mk": "macedonian", "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian",
    "ne": "nepali", "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian",
    "sw": "swahili", "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala", "km": "khmer",
    "sn": "shona", "yo": "yoruba", "so": "somali", "af": "afrikaans", "oc": "occitan", "ka": "georgian",
    "be": "belarusian", "tg": "tajik", "sd": "sindhi", "gu": "gujarati", "am": "amharic",
    "yi": "yiddish", "lo": "lao", "uz": "uzbek", "fo": "faroese", "ht": "haitian creole",
    "ps": "pashto", "tk": "turkmen", "nn": "nynorsk", "mt": "maltese", "sa": "sanskrit",
    "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan", "tl": "tagalog", "mg": "malagasy",
    "as": "assamese", "tt": "tatar", "haw": "hawaiian", "ln": "lingala", "ha": "hausa", "ba": "bashkir",
    "jw": "javanese", "su": "sundanese", "yue": "cantonese",
}


def language_tokens(tokenizer_json) -> dict[str, int]:
    """``{"<|en|>": 50259, ...}`` of the language tokens a ``tokenizer.json`` holds.

    Why: a fine-tuned checkpoint's ``generation_config.json`` often lacks ``lang_to_id`` and
    ``task_to_id`` (its trainer saved a bare one), yet its vocabulary still has the tokens;
    the runtimes and exporters read them from here instead of failing on a missing key.
    """
    import json
    from pathlib import Path

    added = json.loads(Path(tokenizer_json).read_text()).get("added_tokens", [])
    names = {f"<|{code}|>" for code in LANGUAGES}
    return {t["content"]: t["id"] for t in added if t["content"] in names}


def task_tokens(tokenizer_json) -> dict[str, int]:
    """``{"transcribe": id, "translate": id}`` from a ``tokenizer.json`` ({} if absent)."""
    import json
    from pathlib import Path

    added = json.loads(Path(tokenizer_json).read_text()).get("added_tokens", [])
    return {t["content"].strip("<|>"): t["id"] for t in added
            if t["content"] in ("<|transcribe|>", "<|translate|>")}


def complete_generation_config(gen, tokenizer_json, multilingual: bool):
    """``gen`` (transformers' ``GenerationConfig``) with the language and task tables a
    multilingual model needs, read from its tokenizer where a fine-tuned checkpoint's
    generation config lacks them (transformers' generate refuses a language without)."""
    from pathlib import Path

    if multilingual and not getattr(gen, "lang_to_id", None) and Path(tokenizer_json).is_file():
        gen.lang_to_id = language_tokens(tokenizer_json)
        gen.task_to_id = task_tokens(tokenizer_json)
        gen.is_multilingual = True
    return gen
