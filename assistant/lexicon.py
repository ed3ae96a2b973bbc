"""Bilingual word lists for query expansion: FreeDict English-French and French-English.

The dictionaries are GPL, so they are not part of this package: they come from the Debian
packages ``dict-freedict-eng-fra`` and ``dict-freedict-fra-eng`` (``/usr/share/dictd``), which
the Makefile and CI install. Without them expansion simply has no dictionary (the embedding-based
word translation in retrieval.py still works).

A question word is lemmatised (simplemma) before lookup, so "heads" finds "head" -> "tête".
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import threading
from functools import lru_cache
from pathlib import Path

from .tablecache import cached, source_key

log = logging.getLogger("summit.lexicon")

DICT_DIR = Path(os.environ.get("SUMMIT_DICT_DIR", "/usr/share/dictd"))
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_lock = threading.Lock()
_tables: dict[str, dict[str, tuple[str, ...]]] = {}
MAX_TRANSLATIONS = 6


def _b64(s: str) -> int:
    n = 0
    for c in s:
        n = n * 64 + _B64.index(c)
    return n


def parse_dictd(index_text: str, data: bytes) -> dict[str, tuple[str, ...]]:
    """headword -> single-word translations, from a dictd index and its (decompressed) data.

    FreeDict entries read "headword /pron/\\n1. tr, tr\\n2. tr"; phrases ("placer d'argent")
    keep their first content word only when they are short.
    """
    table: dict[str, list[str]] = {}
    for line in index_text.splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or parts[0].startswith("00database"):
            continue
        word, off, length = parts
        try:
            entry = data[_b64(off) : _b64(off) + _b64(length)].decode("utf-8", "replace")
        except ValueError:
            continue
        lines = entry.split("\n")[1:]  # the first line repeats the headword and pronunciation
        out = table.setdefault(word.lower(), [])
        for ln in lines:
            ln = re.sub(r"^\s*\d+\.\s*", "", ln).strip()
            for tr in ln.split(","):
                tr = tr.strip().lower()
                if not tr or len(tr.split()) > 2:
                    continue
                if tr not in out:
                    out.append(tr)
    return {w: tuple(v[:MAX_TRANSLATIONS]) for w, v in table.items() if v}


def table(pair: str) -> dict[str, tuple[str, ...]]:
    """'eng-fra' or 'fra-eng' (loaded once; empty when the Debian package is not installed)."""
    with _lock:
        if pair not in _tables:
            index = DICT_DIR / f"freedict-{pair}.index"
            data = DICT_DIR / f"freedict-{pair}.dict.dz"
            try:
                # parsed once per machine: the cache keeps it between processes (tablecache.py)
                _tables[pair] = cached(f"freedict-{pair}", source_key([index, data], "parse-1"),
                                       lambda: parse_dictd(index.read_text(encoding="utf-8"), gzip.open(data).read()))
            except OSError:
                log.info("no FreeDict %s dictionary in %s (apt-get install dict-freedict-%s)", pair, DICT_DIR, pair)
                _tables[pair] = {}
        return _tables[pair]


_lemmatizer = None


def _simplemma():
    """simplemma's lemmatizer, its dictionaries decoded once per machine (tablecache.py): the
    French one takes half a second to decode from its LZMA stream, a tenth to read back."""
    global _lemmatizer
    with _lock:
        if _lemmatizer is None:
            from importlib import metadata

            import simplemma
            from simplemma.strategies import DefaultStrategy
            from simplemma.strategies.dictionaries.dictionary_factory import DATA_FOLDER, DefaultDictionaryFactory

            decoder = DefaultDictionaryFactory(cache_max_size=0)
            version = metadata.version("simplemma")

            class CachedDictionaries(DefaultDictionaryFactory):
                def _get_dictionary_uncached(self, lang: str) -> dict[str, str]:
                    source = DATA_FOLDER / f"{lang}.plzma"
                    if not source.is_file():
                        return decoder.get_dictionary(lang)  # simplemma's own error for a language it lacks
                    return cached(f"simplemma-{lang}", source_key([source], version),
                                  lambda: dict(decoder.get_dictionary(lang).items()))

            _lemmatizer = simplemma.Lemmatizer(lemmatization_strategy=DefaultStrategy(dictionary_factory=CachedDictionaries()))
        return _lemmatizer


@lru_cache(maxsize=50_000)
def lemma(word: str, language: str) -> str:
    try:
        return _simplemma().lemmatize(word, lang=language).lower()
    except Exception:  # simplemma missing or a language it does not know
        return word.lower()


def translations(word: str, language: str) -> tuple[str, ...]:
    """Words of the other language for a question word (lower case; may be empty)."""
    pair = "eng-fra" if language == "en" else "fra-eng"
    t = table(pair)
    if not t:
        return ()
    w = word.lower()
    found = t.get(w) or t.get(lemma(w, language)) or ()
    return found
