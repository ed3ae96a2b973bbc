"""The Milvus store on milvus-lite, with small fakes: what it stores, what it returns (record by
record against the FAISS store built from the same articles), updates by content hash, full
rebuilds behind the alias, the build lock, fingerprint checks and the memory bounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from assistant import index as faiss_index  # noqa: E402
from assistant import milvus_store as ms  # noqa: E402
from assistant.errors import BuildLockedError, IndexMismatchError, IndexMissingError, StoreUnavailableError, SummitError  # noqa: E402
from assistant.store import Store  # noqa: E402

from .milvus_fakes import ARTICLES, CHANGED_TALENTS, NEW_ARTICLE, encoders, fake_annotate, settings, write_articles  # noqa: E402


@pytest.fixture(autouse=True)
def _fake_annotator(monkeypatch):
    monkeypatch.setattr(ms, "annotate", fake_annotate)
    monkeypatch.setattr(faiss_index, "annotate", fake_annotate)


@pytest.fixture
def env(tmp_path):
    docs = write_articles(tmp_path / "docs")
    s = settings(tmp_path, docs)
    conn = ms.Connection(s)
    yield tmp_path, docs, s, conn
    conn.close()


def build_both(s, conn, enc=None):
    enc = enc or encoders()
    faiss_index.build_index(s, enc)
    faiss = faiss_index.load_index(s.index_dir)
    summary = ms.build(conn, s, enc)
    return faiss, ms.open_store(conn, s, enc.ids), summary


# ---- pure helpers ------------------------------------------------------------------------------


def test_uri_kinds(tmp_path):
    from assistant.settings import Settings

    assert ms.resolve_uri(Settings(milvus_uri="http://milvus:19530")) == ("server", "http://milvus:19530")
    assert ms.resolve_uri(Settings(milvus_uri="https://x.example:443"))[0] == "server"
    kind, path = ms.resolve_uri(Settings(milvus_uri=str(tmp_path / "a.db")))
    assert kind == "lite" and path.endswith("a.db")
    assert ms.resolve_uri(Settings(index_dir=tmp_path / "idx"))[1] == str((tmp_path / "idx" / "milvus.db").resolve())
    for bad in ("ftp://x", str(tmp_path / "a.sqlite")):
        with pytest.raises(SummitError) as err:
            ms.resolve_uri(Settings(milvus_uri=bad))
        assert "\n" not in str(err.value)


def test_settings_from_environment(monkeypatch, tmp_path):
    from assistant.settings import Settings

    monkeypatch.setenv("SUMMIT_STORE", "milvus")
    monkeypatch.setenv("SUMMIT_MILVUS_URI", "http://h:19530")
    monkeypatch.setenv("SUMMIT_MILVUS_TOKEN", "root:Milvus")
    monkeypatch.setenv("SUMMIT_MILVUS_PREFIX", "news_fr")
    s = Settings()
    assert (s.store, s.milvus_uri, s.milvus_token, s.milvus_prefix) == ("milvus", "http://h:19530", "root:Milvus", "news_fr")
    assert "root:Milvus" not in repr(s)
    monkeypatch.setenv("SUMMIT_MILVUS_PREFIX", "bad-prefix!")
    with pytest.raises(ValueError):
        Settings()
    monkeypatch.delenv("SUMMIT_STORE")
    monkeypatch.delenv("SUMMIT_MILVUS_PREFIX")
    assert Settings().store == "faiss"


def test_lexical_query_text_quantises_weights():
    r = ms.LEX_REPEAT
    assert ms.lexical_query_text({"fondat": 1.0, "milliard": 0.5, "eur": 0.01}).split() == \
        ["eur"] + ["fondat"] * r + ["milliard"] * (r // 2)
    assert ms.lexical_query_text({"aujourd'hui": 1.0}).split() == ["aujourdhui"] * r
    assert ms.lexical_query_text({"x": 0.0}) == ""
    assert ms.lexical_query_text({"fondat": 0.75}, {"fondat": "fondation"}).split() == ["fondation"] * round(0.75 * r)
    assert ms.lex_document(["somm", "grand-palais", "l'ia"]) == "somm grandpalais lia"


def test_split_utf8_never_cuts_a_character():
    text = "é" * 50_000 + "x" + "€" * 30_000
    parts = ms.split_utf8(text, 60_000)
    assert "".join(parts) == text
    assert all(len(p.encode("utf-8")) <= 60_000 for p in parts) and len(parts) == 4
    assert ms.split_utf8("") == [""]


def test_filter_literal_escapes_quotes():
    assert ms.filter_literal('a"b\\c') == '"a\\"b\\\\c"'


def test_idf_table_matches_faiss_formula():
    df = {"somm": 3, "fondat": 1, "milliard": 5}
    table = ms.IdfTable.from_df(df, 10)
    _, term_ids, idf = faiss_index.build_lexical([["somm", "milliard", "fondat"], ["somm", "milliard"], ["somm", "milliard"],
                                                  ["milliard"], ["milliard"], [], [], [], [], []])
    for term, i in term_ids.items():
        assert table.get(term) == float(idf[i])
    assert table.get("absent") is None
    assert table.nbytes == 3 * 12


def test_top_words_caps_by_frequency_then_sorts():
    words = {"zebre": ("zebr", 9), "avion": ("avion", 1), "fondation": ("fondat", 5), "orphan": ("orph", 9)}
    terms = {"zebr": 1, "avion": 1, "fondat": 1}
    assert ms.top_words(words, terms, 2) == [("fondation", "fondat"), ("zebre", "zebr")]
    assert ms.top_words(words, terms, 10) == [("avion", "avion"), ("fondation", "fondat"), ("zebre", "zebr")]


# ---- one build: the two stores agree -----------------------------------------------------------


@pytest.mark.slow  # embedded Milvus (milvus-lite)
def test_store_holds_what_the_faiss_store_holds(env):
    tmp, docs, s, conn = env
    faiss, store, summary = build_both(s, conn)
    assert isinstance(store, Store) and store.kind == "milvus"
    assert summary["mode"] == "full" and summary["built"]
    assert store.counts() == faiss.counts()
    assert store.n_encoders == 2 and store.manifest["dimensions"] == [96, 64]
    # documents: metadata and cleaned text
    assert [d["doc_id"] for d in store.document_list()] == [d["doc_id"] for d in faiss.document_list()]
    for d in faiss.document_list():
        got = store.document(d["doc_id"])
        assert got["text"] == d["text"] and got["title"] == d["title"] and got["published"] == d["published"]
    assert store.document("nope") is None and store.document('x" or doc_id != "') is None
    # chunks and sentences, id by id, with entities and the anaphor flag
    assert list(store.ids("chunk")) == list(faiss.ids("chunk"))
    assert list(store.ids("sentence")) == list(faiss.ids("sentence"))
    for c in faiss.ids("chunk"):
        assert store.chunk(c) == faiss.chunk(c) and store.chunk_text(c) == faiss.chunk_text(c)
    for sid in faiss.ids("sentence"):
        assert store.sentence(sid) == faiss.sentence(sid), sid
        assert store.sentence_text(sid) == faiss.sentence_text(sid)
        assert store.previous_sentence(sid) == faiss.previous_sentence(sid)
        assert store.next_sentence(sid) == faiss.next_sentence(sid)
    assert any(faiss.sentence(s_).anaphor for s_ in faiss.ids("sentence"))
    assert any(faiss.sentence(s_).entities for s_ in faiss.ids("sentence"))
    # stored vectors of both encoders
    for e in range(2):
        for level in ("chunk", "sentence"):
            ids = list(faiss.ids(level))
            np.testing.assert_allclose(store.vectors(e, level, ids), faiss.vectors(e, level, ids), atol=1e-6)
    # lexical side tables
    assert store.vocab == faiss.vocab
    np.testing.assert_allclose(store.vocab_vectors, faiss.vocab_vectors, atol=1e-6)
    assert [store.term_of(i) for i in range(len(store.vocab))] == [faiss.term_of(i) for i in range(len(faiss.vocab))]
    for term in list(faiss.term_ids)[:200] + ["absentterm"]:
        assert store.term_idf(term) == faiss.term_idf(term)
    assert store.max_idf == faiss.max_idf
    # which kind of name words introduce (index.role_types), and the corpus centroid
    assert faiss.role_table and {t: store.roles(t) for t in faiss.role_table} == faiss.role_table
    assert store.roles("absentterm") == {}
    from assistant.retrieval import Retriever

    for e in range(2):
        np.testing.assert_allclose(store.centroid(e), Retriever(faiss, encoders()).centroid(e), atol=1e-5)


@pytest.mark.slow  # embedded Milvus (milvus-lite)
def test_dense_and_lexical_search_agree(env):
    tmp, docs, s, conn = env
    enc = encoders()
    faiss, store, _ = build_both(s, conn, enc)
    questions = ["Combien d'argent pour la fondation ?", "Who will host the next summit?", "Quel montant total a été annoncé ?",
                 "centre de données électricité", "Clara Chappaz chercheurs"]
    for q in questions:
        for e in range(2):
            v = enc[e].encode([q], query=True)[0]
            for level in ("chunk", "sentence"):
                want = faiss.dense(e, level, v, 8)
                got = store.dense(e, level, v, 8)
                assert [i for i, _ in got] == [i for i, _ in want] or sorted(got) == sorted(want)
                np.testing.assert_allclose([x for _, x in got], [x for _, x in want], atol=1e-5)
    from assistant import text as textmod

    for q in questions:
        terms = {t: 1.0 for t in textmod.terms(q, textmod.detect_language(q)) if faiss.term_idf(t) is not None}
        weights = {t: w for t, w in zip(terms, [1.0, 0.75, 0.5, 0.25, 1.0, 0.5])}
        want = faiss.lexical(weights, 10)
        got = store.lexical(weights, 10, q.split())
        assert [i for i, _ in got] == [i for i, _ in want], q
        np.testing.assert_allclose([x for _, x in got], [x for _, x in want], rtol=1e-4)
    assert store.lexical({}, 5) == [] and store.lexical({"absentterm": 1.0}, 5) == []


@pytest.mark.slow  # embedded Milvus (milvus-lite)
def test_retriever_and_answerer_run_on_the_store(env):
    from assistant.answering import Answerer
    from assistant.retrieval import Retriever

    tmp, docs, s, conn = env
    enc = encoders()
    faiss, store, _ = build_both(s, conn, enc)
    answers = []
    for st in (faiss, store):
        r = Retriever(st, enc)
        r.warm_up()
        a = Answerer(r, min_confidence=0.0)
        got = []
        for q in ("Combien d'argent pour la fondation ?", "Who will host the next summit?"):
            for mode in ("hybrid", "dense", "lexical"):
                ans = a.answer(r.retrieve(r.analyze(q), mode, n=30), k=3)
                got.append((ans.found, ans.answer, [(c.doc_id, c.start, c.end) for c in ans.citations]))
        answers.append(got)
    assert answers[0] == answers[1]


# ---- updates by content hash -------------------------------------------------------------------


@pytest.mark.slow  # embedded Milvus (milvus-lite)
def test_update_writes_only_changed_documents(env):
    tmp, docs, s, conn = env
    enc = encoders()
    ms.build(conn, s, enc)
    before = ms.open_store(conn, s, enc.ids)
    old_answer_ids = [i for i, _ in before.lexical({"ingenieur": 1.0}, 5)]
    assert old_answer_ids
    (docs / "talents.md").write_text(CHANGED_TALENTS, encoding="utf-8")
    (docs / "mistral.md").write_text(NEW_ARTICLE, encoding="utf-8")
    (docs / "declaration.md").unlink()
    embedded = [m.texts_embedded for m in enc]
    summary = ms.build(conn, s, enc)
    assert summary["mode"] == "update"
    assert (summary["added"], summary["changed"], summary["removed"]) == (["mistral"], ["talents"], ["declaration"])
    assert summary["reused_documents"] == 0
    # only the two new texts' passages and sentences were embedded (+ their new words)
    from assistant.documents import load_documents

    new_docs = {d.doc_id: d for d in load_documents(docs, s.boilerplate_patterns)[0]}
    expected = sum(len(p.chunks) + len(p.sentences) for p in (ms.prepare(new_docs[i], s) for i in ("mistral", "talents")))
    assert [m.texts_embedded - b for m, b in zip(enc, embedded)][1] == expected
    after = ms.open_store(conn, s, enc.ids)
    assert after.build_id != before.build_id and after.generation == before.generation
    # unchanged documents keep their ids; the new store equals a FAISS store built from scratch
    faiss_index.build_index(s, enc, reuse=False)
    fresh = faiss_index.load_index(s.index_dir)
    assert after.counts() == fresh.counts()
    assert sorted(d["doc_id"] for d in after.document_list()) == sorted(d["doc_id"] for d in fresh.document_list())
    for term in fresh.term_ids:
        assert after.term_idf(term) == pytest.approx(fresh.term_idf(term), abs=1e-6), term
    assert after.term_idf("sixty") is None  # only in the removed article
    assert {t: after.roles(t) for t in fresh.role_table} == fresh.role_table
    assert all(after.roles(t) == fresh.roles(t) for t in list(after._roles))
    from assistant.retrieval import Retriever

    for e in range(2):
        np.testing.assert_allclose(after.centroid(e), Retriever(fresh, enc).centroid(e), atol=1e-5)
    assert set(after.vocab) == set(fresh.vocab)
    texts = sorted(after.chunk_text(i) for i in after.ids("chunk"))
    assert texts == sorted(fresh.chunk_text(i) for i in fresh.ids("chunk"))
    # the store pinned to the previous build still answers as before
    assert [i for i, _ in before.lexical({"ingenieur": 1.0}, 5)] == old_answer_ids
    assert before.document("declaration") is not None and after.document("declaration") is None
    assert "cinq cents" in after.document("talents")["text"] and "trois cents" in before.document("talents")["text"]
    # nothing changed: nothing to do
    again = ms.build(conn, s, enc)
    assert again["built"] is False


@pytest.mark.slow  # embedded Milvus (milvus-lite)
def test_purge_after_grace_and_rollback_of_a_failed_update(env, monkeypatch):
    tmp, docs, s, conn = env
    enc = encoders()
    ms.build(conn, s, enc)
    (docs / "talents.md").write_text(CHANGED_TALENTS, encoding="utf-8")
    ms.build(conn, s, enc)
    names = ms.read_manifest(conn, s.milvus_prefix)["collections"]
    dead = conn.call("query", names["sentences"], filter=f"died < {ms.DIED_NEVER}", output_fields=["id"], consistency_level="Strong")
    assert dead  # retired rows are kept for replicas still reading the previous build
    # an update that fails after writing rows leaves the published build untouched ...
    (docs / "mistral.md").write_text(NEW_ARTICLE, encoding="utf-8")
    published = ms.read_manifest(conn, s.milvus_prefix)

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ms, "_write_blobs", boom)
    with pytest.raises(RuntimeError):
        ms.build(conn, s, enc)
    assert ms.read_manifest(conn, s.milvus_prefix)["build_id"] == published["build_id"]
    store = ms.open_store(conn, s, enc.ids)
    assert store.document("mistral") is None and store.counts() == published["counts"]
    monkeypatch.undo()
    monkeypatch.setattr(ms, "annotate", fake_annotate)
    # ... and the next one rolls those writes back, purges the retired rows (grace 0) and publishes
    summary = ms.build(conn, s, enc)
    assert summary["rolled_back_rows"] > 0 and summary["purged_rows"] == published["dead_rows"] > len(dead)
    live = ms.open_store(conn, s, enc.ids)
    assert live.document("mistral") is not None
    born_later = conn.call("query", names["chunks"], filter=f"born > {live.seq}", output_fields=["id"], consistency_level="Strong")
    assert born_later == []
    still_dead = conn.call("query", names["sentences"], filter=f"died <= {published['seq']}", output_fields=["id"],
                           consistency_level="Strong")
    assert still_dead == []


# ---- full rebuilds behind the alias --------------------------------------------------------------


@pytest.mark.slow  # embedded Milvus (milvus-lite)
def test_force_writes_a_new_generation_and_switches_the_alias(env):
    tmp, docs, s, conn = env
    enc = encoders()
    ms.build(conn, s, enc)
    first = ms.open_store(conn, s, enc.ids)
    summary = ms.build(conn, s, enc, force=True)
    assert summary["mode"] == "full" and summary["generation"] == first.generation + 1
    assert summary["reused_documents"] == len(ARTICLES)  # same settings: vectors copied, nothing embedded again
    assert summary["embedded_texts"] == 0
    second = ms.open_store(conn, s, enc.ids)
    assert second.generation == first.generation + 1
    assert conn.call("describe_alias", ms.alias_name(s.milvus_prefix))["collection_name"] == second.names["meta"]
    # the previous generation stays readable for replicas that have not switched yet
    assert first.document("sommet")["text"] == second.document("sommet")["text"]
    assert first.lexical({"fondat": 1.0}, 3) == second.lexical({"fondat": 1.0}, 3)
    # the build after that drops it (grace 0)
    third = ms.build(conn, s, enc, force=True)
    assert first.generation in third["dropped_generations"]
    with pytest.raises(StoreUnavailableError):
        first.lexical({"fondat": 1.0}, 3)


@pytest.mark.slow  # embedded Milvus (milvus-lite)
def test_failed_full_build_keeps_the_published_one(env, monkeypatch):
    tmp, docs, s, conn = env
    enc = encoders()
    ms.build(conn, s, enc)
    published = ms.read_manifest(conn, s.milvus_prefix)
    calls = {"n": 0}
    real = ms._Writer.write

    def flaky(self, *a, **k):
        calls["n"] += 1
        raise RuntimeError("embedding server died")

    monkeypatch.setattr(ms._Writer, "write", flaky)
    with pytest.raises(RuntimeError):
        ms.build(conn, s, enc, force=True)
    monkeypatch.setattr(ms._Writer, "write", real)
    assert ms.read_manifest(conn, s.milvus_prefix)["build_id"] == published["build_id"]
    gens = ms._generations(conn, s.milvus_prefix)
    assert list(gens) == [published["generation"]]  # the half-written generation was dropped
    assert ms.open_store(conn, s, enc.ids).document("sommet") is not None


@pytest.mark.slow  # embedded Milvus (milvus-lite)
def test_settings_change_is_detected_and_rebuilds_in_full(env):
    tmp, docs, s, conn = env
    enc = encoders()
    ms.build(conn, s, enc)
    other = s.model_copy(update={"chunk_sentences": 2})
    with pytest.raises(IndexMismatchError) as err:
        ms.open_store(conn, other, enc.ids)
    assert "chunking" in str(err.value) and "summit build" in str(err.value)
    assert "chunking" in ms.status(conn, other, enc.ids).reason
    with pytest.raises(IndexMismatchError):
        ms.open_store(conn, s, ["another-model", "fake-b-64"])
    summary = ms.build(conn, other, enc)
    assert summary["mode"] == "full" and summary["reused_documents"] == 0
    assert ms.status(conn, other, enc.ids).ok
    assert not ms.status(conn, s, enc.ids).ok


@pytest.mark.slow  # embedded Milvus (milvus-lite)
def test_missing_index_and_unreachable_milvus(tmp_path):
    docs = write_articles(tmp_path / "docs")
    s = settings(tmp_path, docs)
    conn = ms.Connection(s)
    try:
        with pytest.raises(IndexMissingError) as err:
            ms.open_store(conn, s)
        assert "summit build" in str(err.value)
        assert ms.status(conn, s, ["x"]).reason.startswith("no index")
    finally:
        conn.close()
    down = ms.Connection(settings(tmp_path, docs, milvus_uri="http://127.0.0.1:9", milvus_timeout=2.0))
    with pytest.raises(StoreUnavailableError) as err:
        ms.read_manifest(down, "summit")
    assert "unreachable" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow  # embedded Milvus (milvus-lite)
def test_a_second_build_is_refused(env):
    tmp, docs, s, conn = env
    enc = encoders()
    ms.build(conn, s, enc)
    with ms.BuildLock(conn, s.milvus_prefix):
        with pytest.raises(BuildLockedError) as err:
            ms.build(conn, s, enc, force=True)
    assert "another build" in str(err.value) and "\n" not in str(err.value)
    assert ms.build(conn, s, enc, force=True)["built"]  # released


@pytest.mark.slow  # embedded Milvus (milvus-lite)
def test_a_stale_lock_is_taken_over(env, monkeypatch):
    tmp, docs, s, conn = env
    lock = ms.BuildLock(conn, s.milvus_prefix)
    lock.__enter__()
    lock._stop.set()  # the holder died: no more heartbeats
    monkeypatch.setattr(ms, "LOCK_TTL", 0.0)
    with ms.BuildLock(conn, s.milvus_prefix) as second:
        assert second._read()["owner"] == second.owner


@pytest.mark.slow  # embedded Milvus (milvus-lite)
def test_milvus_lite_file_in_use_is_a_clear_error(env, tmp_path):
    import subprocess
    import sys
    import textwrap

    _, docs, s, conn = env
    conn.ok()  # this process now holds the file
    code = textwrap.dedent(f"""
        from assistant import milvus_store as ms
        from assistant.settings import Settings
        from assistant.errors import StoreUnavailableError
        try:
            ms.Connection(Settings(milvus_uri={s.milvus_uri!r})).ok()
        except StoreUnavailableError as exc:
            print(exc)
    """)
    repo = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=repo)
    assert "in use by another process" in out.stdout and "milvus_lite server" in out.stdout


# ---- memory bounds -----------------------------------------------------------------------------


@pytest.mark.slow  # embedded Milvus (milvus-lite)
def test_vocabulary_in_memory_is_capped(env):
    tmp, docs, s, conn = env
    enc = encoders()
    ms.build(conn, s, enc)
    full = ms.open_store(conn, s, enc.ids)
    capped = ms.open_store(conn, s.model_copy(update={"milvus_vocab_max": 10}), enc.ids)
    assert len(full.vocab) > 10 and len(capped.vocab) == 10 and capped.vocab_vectors.shape == (10, 96)
    assert capped.vocab == sorted(capped.vocab)
    assert "milliards" in capped.vocab  # the most frequent words stay
    mem = capped.memory()
    assert mem["vocab_vectors_bytes"] == 10 * 96 * 4 and mem["idf_table_bytes"] == 12 * mem["idf_terms"]


@pytest.mark.slow  # embedded Milvus (milvus-lite)
def test_record_cache_is_bounded(env):
    tmp, docs, s, conn = env
    enc = encoders()
    ms.build(conn, s, enc)
    store = ms.open_store(conn, s.model_copy(update={"milvus_cache_rows": 1000}), enc.ids)
    store._shared.records["sentence"].size = 5  # below the setting's floor, to see eviction on a tiny corpus
    texts = [store.sentence_text(i) for i in store.ids("sentence")]
    assert len(store._shared.records["sentence"]) == 5
    assert [store.sentence_text(i) for i in range(len(texts))] == texts  # evicted rows come back from Milvus


@pytest.mark.slow  # embedded Milvus (milvus-lite)
def test_latent_terms_are_stored_read_and_reused_as_in_the_faiss_store(env):
    from assistant.embedding import EncoderSet

    from .fakes import FakeLatentEmbedder
    from .milvus_fakes import HashEncoder

    tmp, docs, s, conn = env
    s = s.model_copy(update={"extra_models": ["e5-small"]})
    enc = EncoderSet([HashEncoder(96, "fake-a-96"), FakeLatentEmbedder(64)])
    faiss, store, summary = build_both(s, conn, enc)
    assert store.manifest["latent_terms"] == faiss.manifest["latent_terms"] == {"encoder": 1, "top_k": 128, "input": "prefixed"}
    assert summary["latent_coded"] == faiss.counts()["sentences"]
    sids = list(faiss.ids("sentence"))
    for question in ("Qui représentera la Chine au sommet ?", "Who will host the next summit?"):
        ids, weights = enc[1].latent_terms([question])[0]
        code = np.zeros(enc[1].latent_dim, np.float32)
        code[ids] = weights
        np.testing.assert_allclose(store.latent_scores(sids, code), faiss.latent_scores(sids, code), atol=2e-3)
        assert store.latent_scores(sids, None) is None
    # an update codes only the changed article's sentences; the others keep theirs
    (docs / "talents.md").write_text(CHANGED_TALENTS, encoding="utf-8")
    coded = enc[1].latent_texts
    summary = ms.build(conn, s, enc)
    after = ms.open_store(conn, s, enc.ids)
    from assistant.documents import load_documents

    talents = next(d for d in load_documents(docs, s.boilerplate_patterns)[0] if d.doc_id == "talents")
    assert summary["latent_coded"] == enc[1].latent_texts - coded == len(ms.prepare(talents, s).sentences)
    faiss_index.build_index(s, enc, reuse=False)
    fresh = faiss_index.load_index(s.index_dir)
    ids, weights = enc[1].latent_terms(["Combien d'ingénieurs les laboratoires recruteront-ils ?"])[0]
    code = np.zeros(enc[1].latent_dim, np.float32)
    code[ids] = weights
    live = list(after.ids("sentence"))
    by_text = {after.sentence_text(i): v for i, v in zip(live, after.latent_scores(live, code))}
    for i, v in zip(fresh.ids("sentence"), fresh.latent_scores(list(fresh.ids("sentence")), code)):
        assert by_text[fresh.sentence_text(i)] == pytest.approx(v, abs=2e-3)
