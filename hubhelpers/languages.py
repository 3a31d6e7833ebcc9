"""The token tax, offline: the same strings in many languages (Unicode CLDR, through Babel) and what a tokenizer
makes of them: tokens per string relative to English (the parity ratio, Petrov et al. 2023), tokens per word
(fertility, Rust et al. 2021) and the share of unknown tokens.

CLDR names the same things in every locale: territories ("France"), languages ("French"), month and day names.
Keyed by what they name, they form a small parallel corpus that ships with an installed package (Babel, already in
the lock through JupyterLab), so no download is needed.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from babel import localedata

from .params import check_int

# 44 locales: high-resource reference points and under-resourced languages of Africa, the Americas, Asia and the
# Pacific, in several scripts, each with CLDR names for every territory (some locales, such as Kinyarwanda or
# Guarani, name only a few). English is the reference of the parity ratio.
LANGUAGES: tuple[str, ...] = (
    "en", "fr", "de", "es", "pt", "it", "nl", "ru", "zh", "ja", "ko", "ar", "hi", "tr", "pl", "vi", "id",
    "sw", "yo", "ha", "ig", "zu", "xh", "am", "ti", "so", "wo", "ak", "kab",
    "qu", "mi", "to", "chr", "jv",
    "bn", "ta", "te", "my", "km", "lo", "ne", "si", "ps", "eo",
)
REFERENCE = "en"
KINDS = ("territories", "languages", "months", "days")


def own_strings(code: str) -> dict[str, str]:
    """The CLDR names of `code`'s own data, keyed 'kind:key' (territories, languages, wide month and day names)."""
    data = localedata.load(code, merge_inherited=False)
    out = {}
    for kind in KINDS:
        table = data.get(kind, {})
        if kind in ("months", "days"):
            table = table.get("format", {}).get("wide", {})
        out.update({f"{kind}:{key}": value.strip() for key, value in table.items() if isinstance(value, str)})
    return out


def parallel_strings(codes: Sequence[str] = LANGUAGES) -> dict[str, dict[str, str]]:
    """{code: {key: string}}: the keys every one of `codes` names with a non-empty string, the same keys in each."""
    if not codes:
        raise ValueError("parallel_strings needs at least one locale code, got none")
    known = set(localedata.locale_identifiers())
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise ValueError(f"unknown CLDR locale(s) {unknown}; accepted: Babel's locale identifiers such as 'yo', 'sw'")
    tables = {code: own_strings(code) for code in codes}
    shared = set.intersection(*({k for k, v in t.items() if v} for t in tables.values()))
    return {code: {key: tables[code][key] for key in sorted(shared)} for code in codes}


def token_counts(count_tokens: Callable[[str], int], strings: Mapping[str, str]) -> dict[str, int]:
    """Tokens per string, by key."""
    return {key: count_tokens(text) for key, text in strings.items()}


def parity_ratios(count_tokens: Callable[[str], int], parallel: Mapping[str, Mapping[str, str]],
                  reference: str = REFERENCE) -> dict[str, float]:
    """Total tokens of each language over the shared strings, divided by the reference language's total."""
    if reference not in parallel:
        raise ValueError(f"reference language {reference!r} is not among {sorted(parallel)}")
    total = {code: sum(token_counts(count_tokens, strings).values()) for code, strings in parallel.items()}
    return {code: total[code] / total[reference] for code in parallel}


def fertility(count_tokens: Callable[[str], int], strings: Mapping[str, str]) -> float:
    """Tokens per whitespace-separated word over `strings` (1.0: one token per word)."""
    words = sum(len(text.split()) for text in strings.values())
    if words == 0:
        raise ValueError("fertility needs at least one word, got only empty strings")
    return sum(token_counts(count_tokens, strings).values()) / words


def unk_rate(tokenize: Callable[[str], list[str]], strings: Mapping[str, str], unk_token: str) -> float:
    """Share of the tokens of `strings` that are the unknown token (0 for a byte-level tokenizer)."""
    tokens = [t for text in strings.values() for t in tokenize(text)]
    return sum(t == unk_token for t in tokens) / max(1, len(tokens))


def script_of(strings: Mapping[str, str]) -> str:
    """The most frequent Unicode script of the letters in `strings` ('LATIN', 'ETHIOPIC', 'CJK', ...)."""
    counts = Counter(unicodedata.name(ch, "UNKNOWN").split()[0] for text in strings.values() for ch in text
                     if ch.isalpha())
    return counts.most_common(1)[0][0] if counts else "UNKNOWN"


def hf_counter(tokenizer) -> Callable[[str], int]:
    """A Hugging Face tokenizer as count_tokens: the ids of the text without special tokens."""
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


WORD_RE = re.compile(r" [^\W_]+")  # a space and the letters after it: ' kwein' of ' kwein-sa.'


def costly_words(tokenizer, texts: Sequence[str], k: int, min_count: int = 2) -> list[str]:
    """The k most frequent words of `texts` (with their leading space, as a byte-level tokenizer sees them) that
    `tokenizer` cuts into two or more tokens and that occur at least `min_count` times: candidates for new tokens."""
    check_int("k", k)
    counts, count_tokens = Counter(m for text in texts for m in WORD_RE.findall(text)), hf_counter(tokenizer)
    split = [(w, c) for w, c in counts.most_common() if c >= min_count and count_tokens(w) > 1]
    return [w for w, _ in split[:k]]
