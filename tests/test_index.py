"""The index as a build product: round trip, idempotence, staleness, damage, atomic swap."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant.errors import IndexCorruptError, IndexMismatchError, IndexMissingError
from assistant.index import FORMAT_VERSION, current_build, load_index, make_faiss_index
from assistant.service import Assistant
from assistant.settings import Settings

from .fakes import ARTICLE_B, FakeEmbedder, write_corpus


@pytest.fixture
def corpus(tmp_path):
    docs = tmp_path / "documents"
    write_corpus(docs)
    return Settings(documents_dir=docs, index_dir=tmp_path / "index", annotate=False, extra_models=[])


def build(settings, embedder=None, **kw):
    return Assistant(settings, embedder or FakeEmbedder()).build(**kw)


def test_round_trip_keeps_chunks_offsets_and_manifest(corpus):
    summary = build(corpus)
    assert summary["built"] and summary["documents"] == 2
    idx = load_index(corpus.index_dir)
    m = idx.manifest
    assert m["model"] == "fake-trigram-512" and m["dimension"] == 512 and m["format_version"] == FORMAT_VERSION
    assert m["chunking"] == {"sentences": 3, "overlap": 1, "max_chars": 1200}
    assert set(m["documents"]) == {"a", "b"} and all(len(d["sha256"]) == 64 for d in m["documents"].values())
    assert idx.chunk_index.ntotal == len(idx.chunks) > 0
    for i, c in enumerate(idx.chunks):
        text = idx.documents[c.doc_id]["text"]
        assert idx.chunk_text(i) == text[c.start : c.end]
        for sid in c.sentence_ids:
            s = idx.sentences[sid]
            assert c.start <= s.start < s.end <= c.end and i in s.chunk_ids
    stored = idx.chunk_index.reconstruct_n(0, idx.chunk_index.ntotal)
    assert np.allclose(np.linalg.norm(stored, axis=1), 1.0, atol=1e-5)


def test_build_is_idempotent_and_notices_changes(corpus):
    first = build(corpus)
    again = build(corpus)
    assert again["built"] is False and again["build_id"] == first["build_id"]
    (corpus.documents_dir / "c.md").write_text(ARTICLE_B.replace("Les invités", "Autres"), encoding="utf-8")
    emb = FakeEmbedder()
    changed = build(corpus, emb)
    assert changed["built"] and "added: c.md" in changed["reason"]
    # The two unchanged documents were not embedded again.
    assert changed["reused_documents"] == 2
    (corpus.documents_dir / "a.md").unlink()
    removed = build(corpus)
    assert "removed: a.md" in removed["reason"] and removed["documents"] == 2


def test_other_model_or_chunking_is_a_mismatch_not_garbage(corpus):
    build(corpus)
    other = Assistant(corpus, FakeEmbedder(model_id="another-model"))
    with pytest.raises(IndexMismatchError, match="model"):
        other.load(rebuild="never")
    with pytest.raises(IndexMismatchError, match="chunking"):
        Assistant(corpus.model_copy(update={"chunk_sentences": 4}), FakeEmbedder()).load(rebuild="stale")
    # serve's policy rebuilds instead.
    assert Assistant(corpus, FakeEmbedder(model_id="another-model")).load(rebuild="any").index.manifest["model"] == "another-model"


def test_missing_index_is_built_on_first_use_or_reported(corpus):
    with pytest.raises(IndexMissingError, match="summit build"):
        Assistant(corpus, FakeEmbedder()).load(rebuild="never")
    assistant = Assistant(corpus, FakeEmbedder()).load()
    assert assistant.index is not None


@pytest.mark.parametrize("damage", ["truncate_vectors", "flip_table_byte", "drop_table", "bad_manifest", "mix_builds", "old_format"])
def test_damaged_index_is_detected_at_load(corpus, damage):
    build(corpus)
    build_dir = current_build(corpus.index_dir)
    if damage == "truncate_vectors":
        data = (build_dir / "chunks.faiss").read_bytes()
        (build_dir / "chunks.faiss").write_bytes(data[: len(data) // 2])
    elif damage == "flip_table_byte":
        data = bytearray((build_dir / "table.json").read_bytes())
        data[len(data) // 2] ^= 0x01
        (build_dir / "table.json").write_bytes(bytes(data))
    elif damage == "drop_table":
        (build_dir / "table.json").unlink()
    elif damage == "bad_manifest":
        (build_dir / "manifest.json").write_text("{not json", encoding="utf-8")
    elif damage == "mix_builds":
        first_table = (build_dir / "table.json").read_bytes()
        (corpus.documents_dir / "a.md").write_text((corpus.documents_dir / "a.md").read_text() + "\nUne phrase de plus.\n")
        build(corpus)
        (current_build(corpus.index_dir) / "table.json").write_bytes(first_table)
    elif damage == "old_format":
        m = json.loads((build_dir / "manifest.json").read_text())
        m["format_version"] = 0
        (build_dir / "manifest.json").write_text(json.dumps(m))
    with pytest.raises((IndexCorruptError, IndexMismatchError)) as info:
        Assistant(corpus, FakeEmbedder()).load(rebuild="stale")
    assert "summit build" in str(info.value)
    # serve's policy: rebuild from documents and carry on.
    assert Assistant(corpus, FakeEmbedder()).load(rebuild="any").index is not None


class ExplodingEmbedder(FakeEmbedder):
    def encode(self, texts, **kw):
        if self.calls >= 1:
            raise RuntimeError("disk full")
        return super().encode(texts, **kw)


def test_a_failed_build_leaves_the_previous_index_serving(corpus):
    first = build(corpus)
    (corpus.documents_dir / "c.md").write_text(ARTICLE_B.replace("Les invités", "Encore"), encoding="utf-8")
    emb = ExplodingEmbedder()
    emb.calls = 1
    with pytest.raises(RuntimeError, match="disk full"):
        Assistant(corpus, emb).build()
    assert load_index(corpus.index_dir).build_id == first["build_id"]
    assert not list((corpus.index_dir / "builds").glob(".tmp-*"))


def test_bad_documents_fail_the_build_without_touching_the_index(corpus):
    first = build(corpus)
    (corpus.documents_dir / "bad.md").write_bytes(b"---\ntitle: x\n---\n\xff")
    from assistant.errors import DocumentError

    with pytest.raises(DocumentError, match="bad.md"):
        build(corpus)
    assert load_index(corpus.index_dir).build_id == first["build_id"]
    skipped = build(corpus, skip_invalid=True)
    assert skipped["built"] and len(skipped["skipped"]) == 1


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_faiss_top_k_matches_brute_force(kind):
    rng = np.random.default_rng(7)
    base = rng.normal(size=(2000, 32)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    queries = rng.normal(size=(20, 32)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    index = make_faiss_index(base, kind)
    _, got = index.search(queries, 10)
    expected = np.argsort(-(queries @ base.T), axis=1)[:, :10]
    if kind == "flat":
        assert (got == expected).all()
    else:
        recall = np.mean([len(set(g) & set(e)) / 10 for g, e in zip(got, expected)])
        assert recall >= 0.95
