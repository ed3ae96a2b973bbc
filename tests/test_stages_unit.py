"""The answer-extraction stages, each on invented sentences: question analysis, typed spans and
their binding, coverage and key-term features, abstention features, fitted models, follow-up
context, conflicts between sources. No model is loaded."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant import abstention, conversation, lexicon, questions, scoring, spans
from assistant.retrieval import QueryWord


# ---- question analysis -----------------------------------------------------------------------


def no_similarity(word, words):
    return 0.0


@pytest.mark.parametrize(
    "question, wh, answer_type",
    [
        ("Who will open the fair?", "who", "person"),
        ("Qui ouvrira la foire ?", "who", "person"),
        ("When does the fair open?", "when", "date"),
        ("Quand ouvre la foire ?", "when", "date"),
        ("Where will the delegates sleep?", "where", "place"),
        ("Où dormiront les délégués ?", "where", "place"),
        ("How much did the guild pay?", "how_much", "money"),
        ("Combien d'euros la guilde a-t-elle versés ?", "how_much", "money"),
        ("How many boats sailed?", "how_many", "count"),
        ("Combien de bateaux ont navigué ?", "how_many", "count"),
        ("How long will the fair last?", "how_long", "duration"),
        ("Combien de temps durera la foire ?", "how_long", "duration"),
        ("Why did the guild leave?", "why", None),
        ("Pourquoi la guilde est-elle partie ?", "why", None),
        ("Did the guild sign the charter?", "yesno", "yesno"),
        ("La guilde a-t-elle signé la charte ?", "yesno", "yesno"),
        ("Est-ce que la guilde a signé ?", "yesno", "yesno"),
    ],
)
def test_question_words_give_the_asked_type(question, wh, answer_type):
    t = questions.analyse(question, no_similarity)
    assert (t.wh, t.answer_type) == (wh, answer_type)


def test_a_which_question_is_typed_by_its_head_noun():
    t = questions.analyse("Which city will host the fair?", no_similarity)
    assert t.wh == "which" and t.answer_type == "place" and t.head == "city"
    t = questions.analyse("Quelle entreprise a construit le pont ?", no_similarity)
    assert t.answer_type == "org" and t.head == "entreprise"
    # an adjective before the noun: "Which Flemish painter" -> painter
    assert questions.head_noun("Which Flemish painter drew it?")[0] == "painter"
    assert questions.head_noun("Quels pays ont voté ?") == ("pays", True)


def test_the_head_phrase_ends_at_grammar_and_english_puts_its_noun_last():
    assert questions.head_phrase("Which young Flemish river port signed the pact?", "en") == ["young", "flemish", "river", "port"]
    assert questions.head_phrase("Quel maître de forges a parlé ?", "fr") == ["maître"]
    assert questions.head_phrase("Which wool merchant behind the Hansa deal spoke?", "en") == ["wool", "merchant"]
    # English: the last lower-case word first (a capitalised one is a name-like modifier)
    assert questions.head_order("Which young Flemish river port signed?", "en") == ["port", "river", "young"]
    assert questions.head_order("Which river port signed?", "en")[:2] == ["signed", "port"]
    # French: the first word, after a name-like adjective at most
    assert questions.head_order("Quelle ville flamande a signé ?", "fr")[0] == "ville"


def test_a_which_question_is_typed_by_the_first_word_of_its_phrase_that_has_a_category():
    def similarity(word, words):  # invented word vectors: only "port" is close to a place word
        return 0.9 if word == "port" and "city" in words else 0.1

    t = questions.analyse("Which young river port signed the pact?", similarity, language="en")
    assert (t.answer_type, t.head) == ("place", "port")
    # a verb ending the phrase ("two ports dominate") has no category: the noun before it types
    t = questions.analyse("Which two ports dominate the trade?", lambda w, ws: 0.9 if w == "ports" and "city" in ws else 0.1, language="en")
    assert (t.answer_type, t.head, t.plural) == ("place", "ports", True)
    # a close category word outranks what the corpus says the noun introduces
    t = questions.analyse("Which harbour hosted it?", lambda w, ws: 0.9 if "city" in ws else 0.1,
                          lambda head: "person", language="en")
    assert t.answer_type == "place"
    t = questions.analyse("Which harbour hosted it?", no_similarity, lambda head: "person", language="en")
    assert t.answer_type == "person"


def test_a_copular_question_is_typed_by_the_noun_after_its_article():
    t = questions.analyse("Quel est le montant de la dot ?", no_similarity, language="fr")
    assert (t.answer_type, t.head) == ("money", "montant")
    t = questions.analyse("What was the amount the guild pledged?", no_similarity, language="en")
    assert (t.answer_type, t.head) == ("money", "amount")
    assert questions.head_noun("Quels sont les pays signataires ?") == ("pays", True)
    assert questions.head_noun("Quel est le nombre de ports que les guildes tiennent ?") == ("nombre", False)
    # an -ly modifier is not the head ("monthly" is no date when the noun is a fee)
    assert questions.head_order("What is the monthly fee of the guild?", "en") == ["fee"]
    # without an article after the copula there is no head noun ("What is Robotix?")
    assert questions.analyse("What is Robotix?", no_similarity).head is None


def test_a_french_inverted_verb_ends_the_head_phrase():
    assert questions.head_phrase("Quel projet doit-elle présenter ?", "fr") == ["projet"]
    assert questions.head_phrase("Quelle somme la guilde a-t-elle versée ?", "fr") == ["somme"]


def test_counting_time_units_asks_for_a_duration():
    assert questions.analyse("For how many years will the loom run?", no_similarity).answer_type == "duration"
    assert questions.analyse("Combien de jours durera la foire ?", no_similarity).wh == "how_long"
    assert questions.analyse("Combien de bateaux ont navigué ?", no_similarity).answer_type == "count"


def test_an_unknown_head_noun_is_typed_by_what_it_introduces_in_the_corpus_or_left_untyped():
    # the corpus says "le bourgmestre Aldo Brink": the word introduces people
    t = questions.analyse("Quel bourgmestre a parlé ?", no_similarity, lambda head: "person" if head == "bourgmestre" else None)
    assert t.answer_type == "person"
    # nothing knows "humeur": no type, the sentence will answer
    t = questions.analyse("Quelle humeur régnait ?", no_similarity, lambda head: None)
    assert t.answer_type is None and t.wh == "what"


def test_a_description_question_is_not_typed():
    assert questions.analyse("Who is Aldo Brink?", no_similarity).answer_type is None
    assert questions.analyse("Qui est Aldo Brink ?", no_similarity).answer_type is None


# ---- typed spans ---------------------------------------------------------------------------------


def kinds(sentence: str, entities=()):
    return {(s.text, s.kind) for s in spans.candidates(sentence, list(entities))}


def test_numbers_dates_and_durations_are_recognised_whole():
    got = kinds("La guilde versera entre 12 et 15 millions d'euros, les 3 et 4 avril 2031, pendant cinq jours, à 40 % des membres.")
    assert ("12 et 15 millions d'euros", "money") in got
    assert ("les 3 et 4 avril 2031", "date") in got
    assert ("pendant cinq jours", "duration") in got
    assert ("40 %", "percent") in got


def test_english_amounts_dates_and_counts():
    got = kinds("The guild pledged €3.5 billion on March 4, and 22 official languages are planned within two years.")
    assert ("€3.5 billion", "money") in got
    assert any("March 4" in t and k == "date" for t, k in got)
    assert ("22 official languages", "count") in got
    assert ("within two years", "duration") in got


def test_a_count_stops_at_the_first_grammar_word_and_keeps_its_noun():
    got = kinds("Quarante villes ont voté et une centaine de délégués sont attendus.")
    assert ("une centaine de délégués", "count") in got
    assert not any(t.endswith(" ont") for t, _ in got)


def test_a_count_keeps_a_determiner_before_its_noun_and_a_season_its_preposition():
    assert ("Three such looms", "count") in kinds("Three such looms were shipped to Bruges.")
    assert ("quatre autres ateliers", "count") in kinds("La guilde ouvrira quatre autres ateliers.")
    assert ("avant l'hiver", "date") in kinds("Le rapport sera remis avant l'hiver, à Ostende.")
    assert ("by the spring of 2031", "date") in kinds("The canal is due by the spring of 2031.")


def test_a_quantity_starts_a_word():
    got = kinds("Les 12 tisserands du G7 de Bruges ont reçu 40 métiers H200 du récent atelier.")
    assert ("12 tisserands", "count") in got and ("40 métiers", "count") in got
    assert not any(k == "count" and (t.startswith(("7", "200")) or "cent" in t) for t, k in got)
    # number words inside other words are no numbers ("often", "famille")
    counts = {t for t, k in kinds("It is often used, by 3 looms, by the famille de Marie.") if k == "count"}
    assert counts == {"3 looms"}


def test_a_grammar_word_opening_the_sentence_starts_no_name():
    got = kinds("Depuis le G7 de Bruges, la guilde a signé.")
    assert ("G7 de Bruges", "misc") in got and not any(t.startswith("Depuis") for t, _ in got)
    assert ("Grand Canal", "misc") in kinds("Le Grand Canal est fermé.")


def test_an_entity_cut_after_an_elided_article_runs_on_through_the_next_name():
    sentence = "Elle ouvre la « Foire pour l’essor de l’Industrie Lainière » à Ostende."
    a, b = sentence.index("Foire"), sentence.index("Industrie")
    got = kinds(sentence, [(a, b, "MISC"), (b, b + len("Industrie Lainière"), "ORG")])
    assert ("Foire pour l’essor de l’Industrie Lainière", "misc") in got
    assert not any(t == "Industrie Lainière" for t, _ in got)


def test_names_come_from_entities_and_capitalised_runs_with_particles():
    sentence = "La commissaire Ilona van der Berg a rencontré le maire Aldo Brink à Ostende."
    at = sentence.index("Ilona")
    ents = [(at, at + len("Ilona van der Berg"), "PER")]  # what the build-time annotation would give
    got = kinds(sentence, ents)
    assert ("Ilona van der Berg", "person") in got
    assert ("Aldo Brink", "misc") in got  # a capitalised run no annotation typed
    assert any(t == "Ostende" for t, _ in got)


def test_choose_binds_the_candidate_to_the_question_words_in_the_same_clause():
    sentence = "Aldo Brink ne viendra pas, mais la guilde sera représentée par la doyenne Mira Solberg."
    mira = sentence.index("Mira")
    cands = spans.candidates(sentence, [(0, 10, "PER"), (mira, mira + 12, "PER")])
    anchors = [sentence.index("représentée"), sentence.index("guilde")]
    choice = spans.choose(sentence, cands, "person", anchors, {"guilde", "representera"})
    assert choice.span.text == "Mira Solberg"


def test_choose_never_answers_with_what_the_question_names():
    sentence = "La doyenne Mira Solberg dirige la guilde Hansa Nord."
    mira, hansa = sentence.index("Mira"), sentence.index("Hansa")
    cands = spans.candidates(sentence, [(mira, mira + 12, "PER"), (hansa, hansa + 10, "ORG")])
    choice = spans.choose(sentence, cands, "org", [sentence.index("dirige")], {"mira", "solberg", "dirige"})
    assert choice.span.text == "Hansa Nord"


def test_a_count_after_an_approximation_keeps_its_noun_and_stops_at_a_name():
    texts = [c.text for c in spans.candidates("The guild has lent more than 4,000 wooden barrels to the brewers.") if c.kind == "count"]
    assert texts == ["more than 4,000 wooden barrels"]
    texts = [c.text for c in spans.candidates("Les marins ont visité plusieurs dizaines de ports.") if c.kind == "count"]
    assert texts == ["dizaines de ports"]
    texts = [c.text for c in spans.candidates("The fair shows the 1,200 looms Varga builds each year.") if c.kind == "count"]
    assert texts == ["1,200 looms"]
    texts = [c.text for c in spans.candidates("The port ordered 30 Kestrel cranes.") if c.kind == "count"]
    assert texts == ["30 Kestrel cranes"]  # a name right after the number is what is counted


def test_a_counted_noun_of_the_question_binds_the_count():
    sentence = "Sur les 35 quais recensés, la guilde a proposé quatre entrepôts."
    cands = spans.candidates(sentence)
    choice = spans.choose(sentence, cands, "count", [sentence.index("entrepôts")], {"entrepots", "combien"})
    assert choice.span.text == "quatre entrepôts"


def test_the_counted_word_binds_the_count_over_another_question_word():
    # "Combien de ports les marins ont-ils visités ?": both counts hold a question word
    sentence = "Au total, 900 marins venus de plus de 40 ports ont défilé."
    cands = spans.candidates(sentence)
    anchors = [sentence.index("marins"), sentence.index("ports")]
    choice = spans.choose(sentence, cands, "count", anchors, {"ports", "marins"}, counted=frozenset({sentence.index("ports")}))
    assert choice.span.text == "plus de 40 ports" and choice.distance == 0.0
    rival = spans.choose(sentence, [c for c in cands if "marins" in c.text], "count", anchors, set(), counted=frozenset({sentence.index("ports")}))
    assert rival.distance == spans.COUNTED_ELSEWHERE  # near, not bound


@pytest.mark.parametrize("question, counted", [
    ("How many of these wooden barges does the guild own?", ("wooden", "barges")),
    ("Combien de chefs d'atelier ont signé ?", ("chefs", "atelier")),
    ("Combien de quais l'armateur a-t-il loués ?", ("quais",)),
    ("The fair drew visitors from how many towns?", ("towns",)),
    ("When does the fair open?", ()),
])
def test_a_count_question_names_what_it_counts(question, counted):
    assert questions.counted_words(question) == counted
    assert questions.analyse(question, no_similarity).counted == (counted if counted else ())


def test_coordinated_candidates_join_for_a_plural_question():
    sentence = "La Norvège et le Portugal n'ont pas voté la charte."
    no, pt = sentence.index("Norvège"), sentence.index("Portugal")
    cands = spans.candidates(sentence, [(no, no + 7, "LOC"), (pt, pt + 8, "LOC")])
    choice = spans.choose(sentence, cands, "place", [sentence.index("voté")], {"pays", "vote"}, plural=True)
    assert choice.span.text == "Norvège et le Portugal"


def test_a_span_is_only_trusted_when_it_is_unambiguous():
    sentence = "Aldo Brink et Mira Solberg ont signé."
    mira = sentence.index("Mira")
    cands = spans.candidates(sentence, [(0, 10, "PER"), (mira, mira + 12, "PER")])
    far = spans.Choice(cands[0], 1.0, 200.0, 0.0)
    assert not spans.confident(far, sentence, cands, "person")  # two people, nothing binds one
    near = spans.Choice(cands[0], 1.0, 5.0, 1.0)
    assert spans.confident(near, sentence, cands, "person")
    assert not spans.confident(spans.Choice(cands[0], 0.4, 1.0, 1.0), sentence, cands, "org")


# ---- coverage and key terms ------------------------------------------------------------------------


def word(w, importance, *, own=True, entity=False, terms=None):
    return QueryWord(w, 1.0 if own else 0.5, terms or {w: 1.0}, importance, entity=entity)


def test_coverage_weights_words_by_importance_and_ignores_context_words():
    words = [word("brink", 8.0, entity=True), word("salaire", 6.0), word("guilde", 2.0, own=False)]
    assert scoring.coverage(words, np.array([1.0, 0.0, 1.0])) == pytest.approx(8 / 14)
    assert scoring.coverage(words, np.array([1.0, 1.0, 0.0]), own_only=False) == pytest.approx(14 / 15)


def test_a_missing_attribute_sinks_the_key_term_match():
    words = [word("brink", 8.0, entity=True), word("salaire", 9.0), word("annuel", 3.0)]
    # the sentence names Brink but says nothing of a salary
    assert scoring.min_key_match(words, np.array([1.0, 0.0, 1.0])) == 0.0
    assert scoring.min_key_match(words, np.array([1.0, 0.9, 0.0])) == pytest.approx(0.9)
    assert scoring.unmatched_share(words, np.array([1.0, 0.0, 1.0])) == pytest.approx(9 / 20)


# ---- fitted models -----------------------------------------------------------------------------------


def test_logistic_model_round_trips_and_refuses_other_features(tmp_path):
    m = scoring.LogisticModel(("a", "b"), np.array([1.0, 0.0]), np.array([2.0, 1.0]), np.array([1.0, -1.0]), 0.5, 0.3)
    X = np.array([[1.0, 0.0], [3.0, 2.0]])
    assert np.allclose(m.logit(X), [0.5, 0.5 + 1.0 - 2.0])
    again = scoring.LogisticModel.from_json(json.loads(json.dumps(m.to_json())), ("a", "b"))
    assert np.allclose(again.proba(X), m.proba(X)) and again.threshold == 0.3
    with pytest.raises(ValueError, match="summit fit"):
        scoring.LogisticModel.from_json(m.to_json(), ("a", "c"))


@pytest.mark.parametrize("latent", [True, False])
def test_the_committed_weights_match_the_features_the_code_computes(latent):
    d = json.loads(scoring.default_weights_file(latent).read_text(encoding="utf-8"))
    assert tuple(d["sentence"]["features"]) == scoring.SENTENCE_FEATURES
    if not latent:  # fitted with latent terms off: they carry no weight
        for name in ("latent", "latent_rel"):
            assert d["sentence"]["coef"][scoring.SENTENCE_FEATURES.index(name)] == pytest.approx(0.0, abs=1e-9)
    assert tuple(d["abstain"]["features"]) == abstention.ABSTAIN_FEATURES
    assert d["sentence"]["meta"]["fitted"] and d["abstain"]["meta"]["fitted"]
    assert 0.0 < d["abstain"]["threshold"] < 1.0


def test_weights_save_and_load(tmp_path):
    w = scoring.load_weights(tmp_path / "none.json")  # before any fit: a neutral stand-in
    assert w.sentence.meta == {"fitted": False}
    w.settings["context_weight"] = 0.7
    path = scoring.save_weights(w, tmp_path / "w.json")
    back = scoring.load_weights(path)
    assert back.settings == {"context_weight": 0.7} and back.sentence.features == scoring.SENTENCE_FEATURES


def test_threshold_keeps_false_abstentions_within_budget():
    from assistant.fitting import choose_threshold

    p = np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.15, 0.6, 0.05])
    y = np.array([1, 1, 1, 1, 0, 0, 1, 0])
    t = choose_threshold(p, y, 0.0)
    assert ((p < t) & (y == 1)).sum() == 0 and ((p < t) & (y == 0)).sum() == 3
    t = choose_threshold(p, y, 0.2)  # one of the five answerable may be refused
    assert ((p < t) & (y == 1)).sum() == 1


# ---- abstention features ---------------------------------------------------------------------------


class Scored:
    def __init__(self, p, **f):
        base = {k: 0.0 for k in ("cov", "min_key", "cov_ctx", "key_min", "unmatched", "ent", "ent_doc", "ent_min",
                                 "type_fit", "type_bound", "local_cov", "cos0", "cos1")}
        base.update(f)
        self.features, self.p, self.logit = base, p, float(np.log(p / (1 - p)))
        self.own_logit = self.logit


class Q:
    def __init__(self, words):
        self.words = words


def test_abstention_features_see_unknown_names_and_words():
    words = [QueryWord("zorblatt", 1.0, {}, 9.0, entity=True), word("salaire", 6.0)]
    x = abstention.features(Q(words), Scored(0.6, min_key=0.2), None, True, (0.3, 0.8))
    f = dict(zip(abstention.ABSTAIN_FEATURES, x))
    # the unknown name carries 9 of the question's 15 units of meaning (and is the only weak word)
    assert f["ent_unknown_share"] == pytest.approx(9 / 15) and f["weak"] == pytest.approx(9 / 15)
    assert f["min_key"] == 0.2 and (f["domain0"], f["domain1"]) == (0.3, 0.8)
    assert abstention.names_unknown(Q(words))
    assert abstention.refuses_outright(x, {"refuse_weak": 0.5}) and not abstention.refuses_outright(x, {"refuse_weak": 0.9})


# ---- follow-ups -------------------------------------------------------------------------------------


class Ans:
    def __init__(self, answer, found=True, span_type="person", asked_type="person"):
        self.answer, self.found, self.span_type, self.asked_type = answer, found, span_type, asked_type


def test_a_follow_up_carries_earlier_turns_with_decaying_weight():
    first = conversation.Turn("Qui dirige la guilde ?")
    second = conversation.follow("Et depuis quand ?", first, Ans("Mira Solberg"))
    assert second.context == [("Qui dirige la guilde ?", conversation.CONTEXT_WEIGHT), ("Mira Solberg", conversation.ANSWER_WEIGHT)]
    third = conversation.follow("Où vit-elle ?", second, Ans("en 2029", span_type="date", asked_type="date"))
    weights = dict(third.context)
    assert weights["Qui dirige la guilde ?"] == pytest.approx(conversation.CONTEXT_WEIGHT * conversation.DECAY)
    assert third.previous_type == "date"


def test_when_a_whole_sentence_answered_its_chosen_span_is_the_follow_up_referent():
    sentence = "Mira Solberg, qui dirige la guilde, a refusé de commenter."
    prev = Ans(sentence, span_type=None)
    prev.focus = "Mira Solberg"  # the typed span the sentence was chosen for, not sure enough to stand alone
    turn = conversation.follow("Quelle entreprise dirigeait-elle avant ?", conversation.Turn("Qui dirige la guilde ?"), prev)
    assert ("Mira Solberg", conversation.ANSWER_WEIGHT) in turn.context
    assert turn.answers == ()  # still no short answer the follow-up must avoid
    prev.focus = None
    turn = conversation.follow("Et avant ?", conversation.Turn("Qui dirige la guilde ?"), prev)
    assert turn.context == [("Qui dirige la guilde ?", conversation.CONTEXT_WEIGHT)]


def test_an_elliptic_question_inherits_the_previous_type():
    class Query:
        text = "Et celui de Hansa ?"
        qtype = questions.QuestionType("other", None)

    q = conversation.inherit_type(Query(), conversation.Turn("Et celui de Hansa ?", [], "person"))
    assert q.qtype.answer_type == "person"


def test_a_why_or_how_follow_up_keeps_no_span_type():
    class Query:
        text = "Dans quel but ?"
        qtype = questions.analyse("Dans quel but ?")

    assert Query.qtype.wh == "why"
    q = conversation.inherit_type(Query(), conversation.Turn("Dans quel but ?", [], "person"))
    assert q.qtype.answer_type is None


def test_the_conversation_remembers_its_short_answers_newest_first():
    first = conversation.Turn("Qui dirige la guilde ?")
    second = conversation.follow("Et depuis quand ?", first, Ans("Mira Solberg"))
    third = conversation.follow("Où vit-elle ?", second, Ans("en 2029", span_type="date", asked_type="date"))
    assert third.answers == ("en 2029", "Mira Solberg")
    fourth = conversation.follow("Pourquoi ?", third, Ans("Elle vit à Ostende depuis 2029.", span_type=None, asked_type="place"))
    assert fourth.answers == ("en 2029", "Mira Solberg")  # a whole sentence is not a short answer

    class Query:
        text = "Pourquoi ?"
        qtype = questions.QuestionType("why", None)
        previous_sid = previous_doc = None
        answered = frozenset()

    q = conversation.attach(Query(), fourth)
    assert q.answered == {"en", "2029", "mira", "solberg"}


def test_a_follow_up_is_not_answered_with_what_the_conversation_already_answered():
    sentence = "La guilde Hansa Nord tient sa foire les 3 et 4 mars, et sa semaine des métiers commence le 27 février."
    cands = spans.candidates(sentence)
    anchors = [sentence.index("semaine"), sentence.index("commence")]
    question_words = {"quand", "commence", "semaine"}
    first = spans.choose(sentence, cands, "date", [sentence.index("foire")], {"quand", "foire"})
    assert first.span.text == "les 3 et 4 mars"
    answered = {"les", "3", "et", "4", "mars"}
    again = spans.choose(sentence, cands, "date", anchors, question_words | answered)
    assert again.span.text == "le 27 février"


def test_a_name_trimmed_to_its_initials_is_no_answer():
    sentence = "Selon une source proche du dossier, K.T. Morohashi viendra."
    kt = sentence.index("K.T.")
    cands = spans.candidates(sentence, [(kt, kt + len("K.T. Morohashi"), "PER")])
    # asked who the source is, after "K.T. Morohashi" answered the turn before: "K.T" is left
    known = {"qui", "source", "k", "t", "morohashi"}
    assert spans.choose(sentence, cands, "person", [sentence.index("source")], known) is None


# ---- dictionary expansion ----------------------------------------------------------------------------


def test_dictd_entries_are_parsed_into_single_word_translations():
    data = "harbour /hɑːbər/\n1. port, havre\n2. abri\nguild /gild/\ncorporation, guilde, confrérie de métier longue\n".encode()
    b64 = lexicon._B64

    def enc(n):
        out = ""
        while True:
            out = b64[n % 64] + out
            n //= 64
            if not n:
                return out

    first = data.index(b"guild")
    index = f"harbour\t{enc(0)}\t{enc(first)}\nguild\t{enc(first)}\t{enc(len(data) - first)}\n"
    table = lexicon.parse_dictd(index, data)
    assert table["harbour"] == ("port", "havre", "abri")
    assert table["guild"] == ("corporation", "guilde")


# ---- leave-one-article-out cross-validation --------------------------------------------------------


def _ranking_rows(rng, articles=("a", "b", "c"), per_article=4, cands=5):
    """Invented candidate rows: feature 0 is higher on the sentence that answers, feature 1 is noise."""
    X, y, g, arts = [], [], [], []
    qi = 0
    for art in articles:
        for _ in range(per_article):
            pos = int(rng.integers(cands))
            for j in range(cands):
                X.append([(2.0 if j == pos else 0.0) + rng.normal(0, 0.3), rng.normal()])
                y.append(1 if j == pos else 0)
                g.append(qi)
                arts.append(art)
            qi += 1
    return np.array(X), np.array(y), np.array(g), np.array(arts, dtype=object)


def test_cross_validation_ranks_held_out_articles_and_counts_missed_retrieval():
    from assistant.fitting import cv_sentences

    X, y, g, arts = _ranking_rows(np.random.default_rng(0))
    report = cv_sentences(X, y, g, arts, {"a": 4, "b": 4, "c": 4})
    assert report["top1"] == 1.0 and report["top3"] == 1.0 and set(report["folds"]) == {"a", "b", "c"}
    # one more question of article "c" whose evidence retrieval missed: a miss, not left out
    report = cv_sentences(X, y, g, arts, {"a": 4, "b": 4, "c": 5})
    assert report["questions"] == 13 and report["top1"] == round(12 / 13, 4)
    assert report["folds"]["c"] == {"questions": 5, "top1": 0.8}


def test_cross_validation_judges_a_useless_feature_as_chance():
    from assistant.fitting import cv_sentences

    X, y, g, arts = _ranking_rows(np.random.default_rng(1), per_article=30)
    noise_only = X[:, 1:]  # only the noise feature: no better than picking one of five
    report = cv_sentences(noise_only, y, g, arts, {"a": 30, "b": 30, "c": 30})
    assert report["top1"] < 0.45


def test_cross_validated_abstention_threshold_and_recall_by_kind():
    from assistant.fitting import cv_abstention

    rng = np.random.default_rng(2)
    arts, X, y, kinds = [], [], [], []
    for art in ("a", "b", "c"):
        for kind, centre in (("answerable", 2.0), ("near_miss", -2.0), ("off_topic", -3.0)):
            for _ in range(10 if kind == "answerable" else 4):
                X.append([centre + rng.normal(0, 0.3)])
                y.append(1 if kind == "answerable" else 0)
                kinds.append(kind)
                arts.append(art)
    report = cv_abstention(np.array(X), np.array(y), np.array(arts, dtype=object), kinds, max_false_rate=0.0)
    assert report == {"questions": 54, "false_abstentions": 0, "precision": 1.0, "near_miss_recall": 1.0,
                      "off_topic_recall": 1.0, "auc": 1.0}


# ---- sentences set in their article's past --------------------------------------------------------


class _YearStore:
    """Three sentences of one article published in 2031 (invented)."""

    texts = ["Six mois plus tard, en mai 2029, la guilde de Ostende prenait le relais.",
             "La foire était alors coprésidée par Mira Solberg.",
             "En 2031, la foire sera coprésidée par Aldo Brink, et la suivante en 2033."]

    def sentence(self, sid):
        from types import SimpleNamespace
        return SimpleNamespace(doc_id="guilde")

    def document(self, doc_id):
        return {"published": "2031-02-05"}

    def sentence_text(self, sid):
        return self.texts[sid]

    def previous_sentence(self, sid):
        return sid - 1 if sid > 0 else None


def test_a_sentence_naming_only_years_before_its_article_is_set_in_the_past():
    from types import SimpleNamespace

    from assistant.answering import Answerer

    answerer = Answerer(SimpleNamespace(store=_YearStore()))
    assert answerer.earlier_years(0)  # May 2029, in an article of 2031
    assert answerer.earlier_years(1)  # the sentence before it names 2029, this one no year
    assert not answerer.earlier_years(2)  # names the article's own year and a later one


def _scored(doc_id, span, logit):
    from types import SimpleNamespace

    from assistant.answering import ScoredSentence

    choice = SimpleNamespace(span=SimpleNamespace(text=span)) if span else None
    return ScoredSentence(0, 0, doc_id, {}, np.zeros(1), choice, p=float(1 / (1 + np.exp(-logit))), logit=logit,
                          own_logit=logit)


def _with_features(scored):
    scored.features = {k: 0.0 for k in ("cov", "min_key", "cov_ctx", "key_min", "unmatched", "ent", "ent_doc", "ent_min",
                                        "type_fit", "type_bound", "local_cov", "cos0", "cos1")}
    return scored


def test_an_answer_other_articles_confirm_outranks_one_that_stands_alone():
    from types import SimpleNamespace

    from assistant.answering import Answerer

    answerer = Answerer(SimpleNamespace(store=_YearStore()))
    answerer.weights = scoring.Weights(answerer.weights.sentence, answerer.weights.abstain, {"agreement_weight": 2.0})
    alone = _scored("a", "Ilse Varga", 1.0)
    confirmed = _scored("b", "Tomas Brenner", 0.6)
    # the same person, named in full and by surname, in two other articles; a third sentence of
    # the same article as the candidate confirms nothing
    others = [_scored("c", "Brenner", 0.0), _scored("d", "Tomas Brenner", -1.0), _scored("b", "Tomas Brenner", 2.0)]
    scored = [alone, confirmed, *others]
    answerer.corroborate(scored, "person")
    p_c, p_d = 0.5, 1 / (1 + np.exp(1.0))
    assert confirmed.support == pytest.approx(1 - (1 - p_c) * (1 - p_d))
    assert alone.support == 0.0 and alone.logit == 1.0
    assert confirmed.logit == pytest.approx(0.6 + 2.0 * confirmed.support) and confirmed.logit > alone.logit
    assert confirmed.p == pytest.approx(1 / (1 + np.exp(-confirmed.logit)))
    # the order changes, not the evidence abstention weighs
    assert confirmed.own_logit == 0.6
    x = dict(zip(abstention.ABSTAIN_FEATURES, abstention.features(Q([]), _with_features(confirmed), None, True)))
    assert x["best_logit"] == 0.6


def test_corroboration_is_off_without_a_fitted_weight_and_for_yes_no_questions():
    from types import SimpleNamespace

    from assistant.answering import Answerer

    answerer = Answerer(SimpleNamespace(store=_YearStore()))
    for settings, asked in (({}, "person"), ({"agreement_weight": 2.0}, "yesno"), ({"agreement_weight": 2.0}, None)):
        answerer.weights = scoring.Weights(answerer.weights.sentence, answerer.weights.abstain, settings)
        scored = [_scored("a", "Ilse Varga", 1.0), _scored("b", "Ilse Varga", 0.5)]
        answerer.corroborate(scored, asked)
        assert [s.logit for s in scored] == [1.0, 0.5] and not any(s.support for s in scored)


def test_answer_values_compare_numbers_whole():
    from assistant.answering import _value_words

    assert _value_words("1 500 visiteurs") != _value_words("500 visiteurs")
    assert _value_words("2,5 millions") != _value_words("3 millions")
    assert _value_words("Ilse Varga") >= _value_words("Varga")
    assert _value_words("le 4 mars") <= _value_words("les 3 et 4 mars")


def test_off_topic_questions_are_dealt_into_folds_of_their_own():
    from assistant import evaluation as ev
    from assistant.fitting import OFF_TOPIC_FOLDS, article_of

    seed = ev.Question("s1", "Qui ouvrira la foire ?", ["Aldo Brink"])
    about = ev.Question("a1", "Qui ouvrira la foire ?", ["Aldo Brink"], doc="foire.md")
    off = [ev.Question(f"off-{i}", "Quel temps fera-t-il à Rome ?", answerable=False, kind="off_topic") for i in range(40)]
    assert article_of(seed) == "documents/" and article_of(about) == "foire.md"
    folds = {article_of(q) for q in off}
    assert folds == {f"off-topic/{i}" for i in range(OFF_TOPIC_FOLDS)}
    assert article_of(off[0]) == article_of(ev.Question("off-0", "autre", answerable=False, kind="off_topic"))  # by id


def test_the_tuned_answer_weight_weighs_the_previous_short_answer():
    class Ans:
        found, answer, span_type, asked_type, sid, doc_id = True, "Mira Solberg", "person", "person", 3, "a"

    first = conversation.Turn("Qui dirige la guilde ?")
    turn = conversation.follow("Et depuis quand ?", first, Ans(), {"answer_weight": 0.3, "context_weight": 0.9})
    assert turn.context == [("Qui dirige la guilde ?", 0.9), ("Mira Solberg", 0.3)]


def test_a_loose_translation_does_not_type_a_head_noun_by_its_names():
    from types import SimpleNamespace

    from assistant.retrieval import Retriever

    # "harbour" reaches the corpus stem "port" (its own translation) and, loosely, "porte"
    roles = {"port": {"LOC": 3}, "porte": {"PER": 40}}
    fake = SimpleNamespace(store=SimpleNamespace(roles=lambda t: roles.get(t, {})))
    word = QueryWord("harbour", 1.0, {"port": 0.8, "porte": 0.3}, 1.0)
    assert Retriever.corpus_type(fake, word) == "place"
    assert Retriever.corpus_type(fake, QueryWord("door", 1.0, {"porte": 0.3}, 1.0)) is None


@pytest.mark.parametrize(
    "sentence, negative",
    [
        ("La guilde n'a rien confirmé publiquement.", True),
        ("Aucun site n'a encore été retenu pour la foire.", True),
        ("Le maire n'a vu personne à Ostende.", True),
        ("The guild has no site for its fair yet.", True),
        ("Nobody from the guild attended.", True),
        ("Neither Bruges nor Ostende signed.", True),
        ("Une personne de la guilde a signé la charte.", False),
        ("The guild signed the charter on Monday.", False),
    ],
)
def test_a_yes_no_answer_reads_the_negation_of_its_sentence(sentence, negative):
    from assistant.answering import _NEGATION

    assert bool(_NEGATION.search(sentence)) is negative


def test_a_subject_pronoun_after_an_opening_apposition_refers_back():
    from types import SimpleNamespace

    from assistant import annotate

    class Morph(dict):
        def get(self, key):  # spaCy's MorphAnalysis.get returns a list
            return dict.get(self, key, [])

    def tok(text, pos, **morph):
        return SimpleNamespace(lower_=text.lower(), pos_=pos, morph=Morph({k: [v] for k, v in morph.items()}))

    elle = tok("elle", "PRON", PronType="Prs", Person="3", Case="Nom")
    apposition = [tok(w, "NOUN") for w in "Ancienne directrice de la guilde aujourd'hui présidente du conseil de Bruges".split()]
    a, signe = tok("a", "AUX"), tok("signé", "VERB")
    assert annotate._opening_refers_back(apposition + [elle, a, signe])
    # the tagger sometimes leaves PronType and Case out of a subject pronoun; a relative one has them
    assert annotate._opening_refers_back(apposition + [tok("elle", "PRON", Person="3"), a, signe])
    assert not annotate._opening_refers_back(apposition + [tok("qui", "PRON", PronType="Rel", Person="3"), a, signe])
    assert annotate._opening_refers_back(apposition + [elle, tok("ne", "ADV"), tok("l'", "PRON", PronType="Prs", Person="3", Case="Acc"), a])
    # a named subject after the apposition does not refer back; nor a pronoun object after the verb
    assert not annotate._opening_refers_back(apposition + [tok("Mira", "PROPN"), a, signe])
    assert not annotate._opening_refers_back(apposition + [a, signe, elle])
    # the short opening as before: a pronoun in the subject zone
    assert annotate._opening_refers_back([elle, a, signe])


# ---- which kind of name a word introduces (index.role_types) ----------------------------------


def test_a_name_after_a_preposition_does_not_type_the_noun_before_it():
    from assistant.index import role_words

    assert role_words("la commissaire ") == ["commissaire"]
    assert role_words("le doyen de l'") == []  # "le doyen de l'Ordre": the Ordre is not a doyen
    assert role_words("the head of ") == []
    assert role_words("le maître de Hansa Nord et ") == []  # a coordinated complement
    # a noun phrase between the preposition and the name names the name's kind
    assert role_words("ancien trésorier de la guilde marchande ") == ["guilde", "marchande"]
    # names alone in between: the noun before the preposition names the person
    assert role_words("le doyen de Hansa Nord ") == ["doyen", "Hansa", "Nord"]


def test_role_types_count_the_role_noun_of_a_name_not_of_its_complement():
    from assistant.documents import Document
    from assistant.index import SentenceRecord, role_types

    text = ("Le doyen de l'Ordre ouvrira la foire. Le doyen Aldo Brink parle. "
            "Le doyen Mira Solberg répond. Le doyen de la Hanse arrive.")
    ents = [("Ordre", "LOC"), ("Aldo Brink", "PER"), ("Mira Solberg", "PER"), ("Hanse", "LOC")]
    sentences = []
    start = 0
    for part, (name, label) in zip(text.split(". "), ents):
        s = text.index(part, start)
        a = text.index(name, s)
        sentences.append(SentenceRecord("d1", s, s + len(part), [0], ((a, a + len(name), label),), False))
        start = s + len(part)
    doc = Document(doc_id="d1", title="t", source="s", language="fr", text=text, path="d1.md", content_hash="0")
    roles = role_types([doc], sentences)
    assert roles["doyen"] == {"PER": 2}


def test_a_singular_english_noun_in_s_is_not_plural():
    assert questions.head_noun("Which boss signed?") == ("boss", False)
    assert questions.looks_plural("boss", "which boss") is False
    assert questions.looks_plural("campus", "what campus") is False
    assert questions.looks_plural("ports", "which ports") is True
    assert questions.looks_plural("pays", "quels pays") is True


def test_a_head_modifier_binds_the_name_it_describes():
    # "Which Flemish mayor ...?": both names follow a role word; the modifier says which one
    sentence = "Le maire Ana Ruiz a reçu le maire flamand Jan Peeters."
    ana, jan = sentence.index("Ana"), sentence.index("Jan")
    cands = spans.candidates(sentence, [(ana, ana + 8, "PER"), (jan, jan + 11, "PER")])
    anchors = [sentence.index("maire"), sentence.index("maire flamand"), sentence.index("flamand")]
    plain = spans.choose(sentence, cands, "person", anchors, {"maire", "flamand"})
    assert plain.span.text == "Ana Ruiz"  # the nearest to any question word
    bound = spans.choose(sentence, cands, "person", anchors, {"maire", "flamand"}, head=frozenset({sentence.index("flamand")}))
    assert bound.span.text == "Jan Peeters"


def test_head_anchors_fall_back_to_the_head_noun_where_no_modifier_matches(tmp_path):
    from assistant.service import Assistant
    from assistant.settings import Settings

    from .fakes import FakeEmbedder, write_corpus

    docs = tmp_path / "documents"
    write_corpus(docs, {"a.md": '---\ntitle: "Les maires"\nsource: Exemple\nlanguage: fr\n---\n'
                              "Le maire Ana Ruiz a reçu le maire flamand Jan Peeters. Le maire Ana Ruiz a parlé ensuite.\n"})
    settings = Settings(documents_dir=docs, index_dir=tmp_path / "index", annotate=False, extra_models=[])
    index, retriever, answerer = Assistant(settings, FakeEmbedder()).load()._parts()
    query = retriever.analyze("Quel maire flamand a été reçu ?", language="fr")
    assert query.qtype.head == "maire"
    both, only_mayor = (next(i for i in index.ids("sentence") if index.sentence_text(i).startswith(p))
                        for p in ("Le maire Ana Ruiz a reçu", "Le maire Ana Ruiz a parlé"))
    text = index.sentence_text(both)
    assert answerer.head_anchors(query, both) == frozenset({text.index("flamand")})  # the modifier
    text = index.sentence_text(only_mayor)
    assert answerer.head_anchors(query, only_mayor) == frozenset({text.index("maire")})  # no modifier: the noun


# ---- lemma matching ---------------------------------------------------------------------------


def test_a_question_word_reaches_other_inflections_of_its_lemma_in_its_own_language(tmp_path):
    """Stemmers keep irregular forms apart ("tient" / "tiendra", "hold" / "held"); the lemma
    tables join them, at a little less than a stem match, and only within one language."""
    from assistant.retrieval import LEMMA_STRENGTH
    from assistant.service import Assistant
    from assistant.settings import Settings

    from .fakes import FakeEmbedder, write_corpus

    docs = tmp_path / "documents"
    write_corpus(docs, {
        "fr.md": '---\ntitle: "La foire"\nsource: Exemple\nlanguage: fr\n---\nLa foire aux lanternes se tiendra à Brevannes en juin.\n',
        "en.md": '---\ntitle: "The vote"\nsource: Exemple\nlanguage: en\n---\nThe guild held its vote in an old granary near the harbour.\n',
    })
    settings = Settings(documents_dir=docs, index_dir=tmp_path / "index", annotate=False, extra_models=[])
    _, retriever, _ = Assistant(settings, FakeEmbedder()).load()._parts()
    tient = next(w for w in retriever.analyze("Où se tient la foire aux lanternes ?", language="fr").words if w.word == "tient")
    assert tient.terms.get("tiendr") == LEMMA_STRENGTH
    hold = next(w for w in retriever.analyze("Where did the guild hold its vote?", language="en").words if w.word == "hold")
    assert hold.terms.get("held") == LEMMA_STRENGTH
    lemmas = retriever._vocab_by_lemma()
    # "tiendra" is a French word of the corpus (only the French stemmer gives its term)
    assert [k for k, terms in lemmas.items() if "tiendr" in terms] == [("fr", "tenir")]
    # a stem match keeps its full strength
    foire = next(w for w in retriever.analyze("Quand ouvre la foire ?", language="fr").words if w.word == "foire")
    assert foire.terms.get("foir") == 1.0
