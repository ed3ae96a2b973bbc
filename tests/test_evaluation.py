"""Evaluation metrics, question files, aggregates, floors and reports: hand-made rows, no model."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant import evaluation as ev
from assistant.errors import InvalidInputError
from benchmarks import reporting

# ---- normalisation and relevance ------------------------------------------------------------


def test_norm_unifies_case_apostrophes_spaces_and_compatibility_forms():
    assert ev.norm("L’IA  de\u00a0l'État") == ev.norm("l'ia de l’état")
    assert ev.norm("ﬁnancement") == "financement"  # NFKC ligature
    assert ev.norm("STRASSE") == ev.norm("straße")  # casefold, not lower
    assert ev.norm("« forum robotique »") == ev.norm('"forum robotique"')
    assert ev.norm("  a \n b\t") == "a b"
    assert ev.norm(None) == ""


def test_is_relevant_is_a_normalised_substring_test():
    passage = "La présidente chilienne Rosa Quintana coprésidera l’événement."
    assert ev.is_relevant(passage, "rosa quintana COPRÉSIDERA l'événement")
    assert not ev.is_relevant(passage, "Rosa Quintana présidera")
    assert not ev.is_relevant(passage, None)
    assert not ev.is_relevant(passage, "")


def test_relevance_survives_a_quote_at_the_edge_of_the_evidence():
    passage = "le « Forum pour la robotique solidaire » qui se tiendra à Lyon"
    assert ev.is_relevant(passage, "solidaire » qui se tiendra")
    assert ev.is_relevant(passage, "« Forum pour")


def test_answer_correct_when_the_answer_contains_an_expected_answer():
    assert ev.answer_correct("Rosa Quintana", ["Rosa Quintana", "Quintana"])
    assert ev.answer_correct("la présidente chilienne Rosa  Quintana", ["Quintana"])
    assert ev.answer_correct("3,2 milliards d’euros", ["3,2 milliards d'euros"])
    assert not ev.answer_correct("Kenji Morohashi", ["Rosa Quintana", "Quintana"])
    assert not ev.answer_correct("anything", [])
    assert not ev.answer_correct("anything", [""])


def test_count_relevant():
    passages = ["Quintana coprésidera", "rien", "QUINTANA COPRÉSIDERA le sommet"]
    assert ev.count_relevant(passages, "quintana coprésidera") == 2
    assert ev.count_relevant(passages, None) == 0


def test_evidence_may_list_alternatives_and_answers_ignore_accents():
    passages = ["Quintana coprésidera", "rien", "la cheffe d'État chilienne partagera la présidence"]
    evidence = ["Quintana coprésidera", "partagera la présidence"]
    assert ev.is_relevant(passages[2], evidence) and not ev.is_relevant(passages[1], evidence)
    assert ev.count_relevant(passages, evidence) == 2
    assert ev.answer_correct("la Cite internationale", ["Cité internationale"])


def test_yes_no_answers_are_judged_by_their_first_word_in_either_language():
    assert ev.answer_correct("Non. Le Japon n'a pas signé.", ["non", "no"], "yesno")
    assert ev.answer_correct("No, it did not.", ["non", "no"], "yesno")
    assert not ev.answer_correct("Oui. Le Japon a signé.", ["non", "no"], "yesno")
    # without the type, "no" would be found inside "nombre": the first-word rule avoids it
    assert not ev.answer_correct("Un nombre record de pays", ["non", "no"], "yesno")


def test_question_kinds_and_conflicts_are_parsed_and_checked(tmp_path):
    rows = [
        {"id": "a", "question": "Qui ?", "answers": ["x"], "evidence": "x", "kind": "answerable", "type": "who", "doc": "d1",
         "older_evidence": "y"},
        {"id": "b", "question": "Salaire ?", "answerable": False, "kind": "near_miss", "type": "how_much"},
        {"id": "c", "question": "Météo ?", "answerable": False, "kind": "off_topic"},
    ]
    qs = ev.load_questions(write_lines(tmp_path / "q.jsonl", rows))
    assert [q.kind for q in qs] == ["answerable", "near_miss", "off_topic"] and qs[0].older_evidence == "y" and qs[0].doc == "d1"
    for bad, message in (({"question": "q", "answerable": True, "answers": ["a"], "kind": "near_miss"}, "answerable false"),
                         ({"question": "q", "answers": ["a"], "kind": "maybe"}, "'kind'"),
                         ({"question": "q", "answers": ["a"], "type": "whom"}, "'type'"),
                         ({"question": "q", "answers": ["a"], "evidence": []}, "'evidence'")):
        with pytest.raises(InvalidInputError, match=message):
            ev.load_questions(write_lines(tmp_path / "bad.jsonl", [bad]))


def test_split_files_expand_globs_and_refuse_unknown_splits(tmp_path):
    (tmp_path / "qs").mkdir()
    for name in ("d-one.jsonl", "d-two.jsonl", "t-one.jsonl"):
        write_lines(tmp_path / "qs" / name, [GOOD])
    (tmp_path / "splits.json").write_text(json.dumps({"_note": "x", "dev": ["qs/d-*.jsonl"], "test": ["qs/t-*.jsonl"]}), encoding="utf-8")
    assert [p.name for p in ev.split_files(tmp_path / "splits.json", "dev")] == ["d-one.jsonl", "d-two.jsonl"]
    with pytest.raises(InvalidInputError, match="no split 'train'"):
        ev.split_files(tmp_path / "splits.json", "train")
    (tmp_path / "splits.json").write_text(json.dumps({"dev": ["qs/none-*.jsonl"]}), encoding="utf-8")
    with pytest.raises(InvalidInputError, match="matches no file"):
        ev.split_files(tmp_path / "splits.json", "dev")
    # the same id in two files of one split is refused
    with pytest.raises(InvalidInputError, match="already used"):
        ev.load_question_files([tmp_path / "qs" / "d-one.jsonl", tmp_path / "qs" / "d-two.jsonl"])


def test_follow_up_near_miss_and_conflict_aggregates():
    rows = [make_row(history=["before?"]), make_row(history=["before?"], correct=False),
            make_row(answerable=False, found=False, kind="near_miss"), make_row(answerable=False, found=True, kind="near_miss"),
            make_row(answerable=False, found=False, kind="off_topic"),
            make_row(conflict={"newest_first": True, "older_cited": True}),
            make_row(conflict={"newest_first": True, "older_cited": False}, correct=False)]
    agg = ev.aggregate(rows)
    assert agg["follow_up_accuracy"] == 0.5
    assert agg["abstention"]["near_miss_recall"] == 0.5 and agg["abstention"]["off_topic_recall"] == 1.0
    assert agg["conflicts"] == {"questions": 2, "newest_answer": 0.5, "both_cited": 0.5}


def test_question_row_checks_that_a_conflict_cites_newest_first_and_the_older_one_too():
    q = ev.Question("c", "Combien ?", ["60"], "60 pays ont signé", True, [], "fr", older_evidence="quarante pays signeraient")
    row = ev.question_row(q, answer(True, "60", ["60 pays ont signé le texte", "quarante pays signeraient, dit-on"]))
    assert row["conflict"] == {"newest_first": True, "older_cited": True}
    row = ev.question_row(q, answer(True, "60", ["quarante pays signeraient", "60 pays ont signé"]))
    assert row["conflict"] == {"newest_first": False, "older_cited": True}


# ---- ranking metrics ---------------------------------------------------------------------------


def test_hit_at():
    flags = [False, False, True, False]
    assert ev.hit_at(flags, 1) == 0.0
    assert ev.hit_at(flags, 2) == 0.0
    assert ev.hit_at(flags, 3) == 1.0
    assert ev.hit_at([], 5) == 0.0


def test_mrr_at():
    assert ev.mrr_at([True]) == 1.0
    assert ev.mrr_at([False, False, True, True]) == pytest.approx(1 / 3)
    assert ev.mrr_at([False] * 10 + [True], 10) == 0.0
    assert ev.mrr_at([]) == 0.0


def test_ndcg_at_single_relevant():
    assert ev.ndcg_at([True, False]) == 1.0
    assert ev.ndcg_at([False, True], n_relevant=1) == pytest.approx(1 / math.log2(3))
    assert ev.ndcg_at([False, False, False]) == 0.0


def test_ndcg_at_uses_the_corpus_count_of_relevant_passages():
    # two relevant passages exist; one retrieved at rank 1
    assert ev.ndcg_at([True, False], n_relevant=2) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    # both retrieved at ranks 1 and 2: perfect
    assert ev.ndcg_at([True, True], n_relevant=2) == pytest.approx(1.0)


def test_ndcg_never_exceeds_one_when_the_count_is_too_small():
    assert ev.ndcg_at([True, True, True], n_relevant=1) == pytest.approx(1.0)
    assert ev.ndcg_at([False, True, True], n_relevant=1) <= 1.0


def test_ndcg_cut_at_k():
    assert ev.ndcg_at([False] * 10 + [True], k=10) == 0.0


def test_percentile():
    assert ev.percentile([], 50) == 0.0
    assert ev.percentile([5.0], 95) == 5.0
    assert ev.percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert ev.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95) == pytest.approx(9.55)
    assert ev.percentile([3, 1, 2], 0) == 1 and ev.percentile([3, 1, 2], 100) == 3


def test_dedupe_ranking_keeps_best_rank():
    assert ev.dedupe_ranking(["a", "b", "a", "c", "b"]) == ["a", "b", "c"]


def test_ndcg_graded_matches_trec_eval_linear_gains():
    qrels = {"a": 2, "b": 1, "z": 0}
    # ideal: a(2) at 1, b(1) at 2 -> 2 + 1/log2(3)
    idcg = 2 + 1 / math.log2(3)
    assert ev.ndcg_graded(["a", "b"], qrels) == pytest.approx(1.0)
    assert ev.ndcg_graded(["b", "a"], qrels) == pytest.approx((1 + 2 / math.log2(3)) / idcg)
    assert ev.ndcg_graded(["x", "a"], qrels) == pytest.approx((2 / math.log2(3)) / idcg)
    assert ev.ndcg_graded(["z"], qrels) == 0.0
    assert ev.ndcg_graded(["a"], {"a": 0}) == 0.0


def test_recall_and_mrr_over_ids():
    assert ev.recall_at(["a", "x", "b"], {"a", "b", "c"}, 10) == pytest.approx(2 / 3)
    assert ev.recall_at(["x", "a"], {"a"}, 1) == 0.0
    assert ev.recall_at(["a"], set(), 10) == 0.0
    assert ev.mrr_ids(["x", "y", "a"], {"a"}) == pytest.approx(1 / 3)


def test_ranking_metrics_dedupes_first():
    m = ev.ranking_metrics(["x", "x", "x", "a"], {"a": 1})
    # dedupe -> ["x", "a"]: a at rank 2
    assert m["mrr@10"] == 0.5
    assert m["recall@10"] == 1.0
    assert m["ndcg@10"] == pytest.approx(round(1 / math.log2(3), 4))


def test_mean_metrics():
    rows = [{"a": 1.0, "b": 0.0}, {"a": 0.5, "b": 1.0}]
    assert ev.mean_metrics(rows, ["a", "b"]) == {"a": 0.75, "b": 0.5}
    assert ev.mean_metrics([], ["a"]) == {"a": None}


# ---- question files ---------------------------------------------------------------------------


def write_lines(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


GOOD = {"id": "q01", "question": "Who co-chairs the summit?", "answers": ["Rosa Quintana", "Quintana"], "evidence": "coprésidera",
        "answerable": True, "history": [], "lang": "en"}


def test_load_questions_reads_every_field_and_defaults(tmp_path):
    path = write_lines(tmp_path / "q.jsonl", [GOOD, "", {"id": "q02", "question": "Et où ?", "answers": ["Paris"], "history": ["Quand ?"]},
                                             {"question": "Météo ?", "answerable": False, "evidence": None}])
    qs = ev.load_questions(path)
    assert [q.id for q in qs] == ["q01", "q02", "line4"]
    assert qs[0] == ev.Question("q01", "Who co-chairs the summit?", ["Rosa Quintana", "Quintana"], "coprésidera", True, [], "en",
                                kind="answerable")
    assert qs[1].answerable is True and qs[1].history == ["Quand ?"] and qs[1].lang is None and qs[1].evidence is None
    assert qs[2].answerable is False and qs[2].answers == []


def test_missing_question_file_is_an_invalid_input_error(tmp_path):
    with pytest.raises(InvalidInputError, match="not found"):
        ev.load_questions(tmp_path / "nope.jsonl")
    with pytest.raises(InvalidInputError, match="not a file"):
        ev.load_questions(tmp_path)


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "not a valid question line"),
        ("[1, 2]", "JSON object"),
        ({"id": "x"}, "'question'"),
        ({"question": "   "}, "'question'"),
        ({"question": "q", "answers": "Quintana"}, "'answers'"),
        ({"question": "q", "answers": ["a"], "answerable": "yes"}, "'answerable'"),
        ({"question": "q", "answers": ["a"], "history": "previous"}, "'history'"),
        ({"question": "q", "answers": ["a"], "evidence": 3}, "'evidence'"),
        ({"question": "q"}, "needs 'answers' or 'evidence'"),
        ({"question": "q", "answerable": False, "answers": ["a"]}, "cannot have"),
        ({"question": "q", "answers": ["a"], "lang": 7}, "'lang'"),
    ],
)
def test_invalid_question_lines_name_file_and_line(tmp_path, line, message):
    path = write_lines(tmp_path / "q.jsonl", [GOOD, line])
    with pytest.raises(InvalidInputError, match=message) as info:
        ev.load_questions(path)
    assert f"{path}:2:" in str(info.value)
    assert "\n" not in str(info.value)


def test_duplicate_ids_and_empty_files_are_errors(tmp_path):
    with pytest.raises(InvalidInputError, match="duplicate id 'q01'"):
        ev.load_questions(write_lines(tmp_path / "d.jsonl", [GOOD, GOOD]))
    (tmp_path / "e.jsonl").write_text("\n\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="holds no questions"):
        ev.load_questions(tmp_path / "e.jsonl")
    (tmp_path / "b.jsonl").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidInputError, match="UTF-8"):
        ev.load_questions(tmp_path / "b.jsonl")


def test_parse_modes():
    assert ev.parse_modes("all") == ["hybrid", "dense", "lexical"]
    assert ev.parse_modes("dense") == ["dense"]
    assert ev.parse_modes("lexical,hybrid,lexical") == ["lexical", "hybrid"]
    for bad in ("", "fast", "hybrid,fast"):
        with pytest.raises(InvalidInputError, match="mode must be one of"):
            ev.parse_modes(bad)


# ---- rows and outcomes -----------------------------------------------------------------------


def cite(passage: str, chunk_id: str = "doc#0") -> dict:
    return {"passage": passage, "chunk_id": chunk_id}


def answer(found: bool, text: str, passages: list[str], took: float = 10.0, language: str = "en") -> dict:
    return {"found": found, "answer": text, "citations": [cite(p, f"doc#{i}") for i, p in enumerate(passages)],
            "took_ms": took, "language": language}


Q_QUINTANA = ev.Question("q1", "Who co-chairs?", ["Rosa Quintana", "Quintana"], "Quintana coprésidera", True, [], "en")
Q_NONE = ev.Question("q2", "Weather?", [], None, False, [], "en")


def test_question_row_ranks_and_answer():
    row = ev.question_row(Q_QUINTANA, answer(True, "Rosa Quintana", ["autre chose", "Rosa Quintana coprésidera le sommet"]), mode="hybrid")
    assert row["mode"] == "hybrid"
    assert row["relevant_rank"] == 2
    assert (row["hit@1"], row["hit@3"], row["hit@5"]) == (0.0, 1.0, 1.0)
    assert row["mrr@10"] == 0.5
    assert row["ndcg@10"] == pytest.approx(round(1 / math.log2(3), 4))
    assert row["answer_correct"] is True
    assert row["cited"] == ["doc#0", "doc#1"]
    assert row["top_passage"] == "autre chose"
    assert row["outcome"] == "correct"


def test_question_row_lang_falls_back_to_the_answer_language():
    q = ev.Question("q", "Qui ?", ["Quintana"], "Quintana", True, [], None)
    assert ev.question_row(q, answer(True, "Quintana", ["Quintana"], language="fr"))["lang"] == "fr"


def test_unanswerable_rows_have_no_ranking_metrics():
    row = ev.question_row(Q_NONE, answer(False, "I could not find it", []))
    assert row["hit@1"] is None and row["ndcg@10"] is None
    assert row["outcome"] == "correct_abstention"
    assert ev.question_row(Q_NONE, answer(True, "Sunny", ["it is sunny"]))["outcome"] == "answered_unanswerable"


@pytest.mark.parametrize(
    "ans, expected",
    [
        (answer(True, "Rosa Quintana", ["Quintana coprésidera"]), "correct"),
        (answer(False, "not found", []), "false_abstention"),
        (answer(True, "Morohashi", ["Quintana coprésidera"]), "wrong_answer"),
        (answer(True, "Quintana", ["Quintana viendra"]), "evidence_not_cited"),
    ],
)
def test_outcomes(ans, expected):
    row = ev.question_row(Q_QUINTANA, ans)
    assert row["outcome"] == expected
    assert ev.is_miss(row) == (expected != "correct")


def test_wrong_answer_is_not_counted_correct_even_with_evidence_at_rank_one():
    row = ev.question_row(Q_QUINTANA, answer(True, "Kenji Morohashi", ["Quintana coprésidera"]))
    assert row["hit@1"] == 1.0 and row["answer_correct"] is False


# ---- aggregates ----------------------------------------------------------------------------------


def make_row(*, mode="hybrid", lang="en", answerable=True, found=True, hit=(1.0, 1.0, 1.0), mrr=1.0, ndcg=1.0, correct=True,
             took=10.0, history=(), evidence="e", kind=None, conflict=None) -> dict:
    row = {
        "mode": mode, "id": "x", "lang": lang, "question": "q?", "history": list(history), "answerable": answerable, "found": found,
        "answer": "a", "expected": ["a"] if answerable else [], "evidence": evidence if answerable else None,
        "relevant_rank": 1 if answerable and hit[0] else None,
        "hit@1": hit[0] if answerable else None, "hit@3": hit[1] if answerable else None, "hit@5": hit[2] if answerable else None,
        "mrr@10": mrr if answerable else None, "ndcg@10": ndcg if answerable else None,
        "answer_correct": bool(correct and found and answerable), "took_ms": took, "cited": [], "top_passage": None,
        "kind": kind or ("answerable" if answerable else "near_miss"), "type": None, "doc": None, "conflict": conflict,
    }
    row["outcome"] = ev.outcome(row)
    return row


ROWS = [
    make_row(took=10),  # correct, rank 1
    make_row(hit=(0.0, 1.0, 1.0), mrr=0.5, ndcg=0.63, correct=False, took=20, lang="fr"),  # wrong answer
    make_row(found=False, hit=(0.0, 0.0, 0.0), mrr=0.0, ndcg=0.0, correct=False, took=30, lang="fr"),  # false abstention
    make_row(answerable=False, found=False, took=40),  # correct abstention
    make_row(answerable=False, found=True, took=50, lang="fr"),  # answered an unanswerable
]


def test_aggregate_by_hand():
    agg = ev.aggregate(ROWS)
    assert agg["hit@1"] == pytest.approx(1 / 3, abs=1e-4)
    assert agg["hit@3"] == pytest.approx(2 / 3, abs=1e-4)
    assert agg["mrr@10"] == 0.5
    assert agg["ndcg@10"] == pytest.approx(1.63 / 3, abs=1e-4)
    assert agg["answer_accuracy"] == pytest.approx(1 / 3, abs=1e-4)
    # abstentions: rows 3 (answerable) and 4 (unanswerable) -> precision 1/2; unanswerable: 4, 5 -> recall 1/2
    assert agg["abstention"] == {"precision": 0.5, "recall": 0.5, "false_abstentions": 1, "false_abstention_rate": 0.3333,
                                 "near_miss_recall": 0.5, "off_topic_recall": None}
    assert agg["latency_ms"] == {"p50": 30.0, "p95": 48.0}


def test_aggregate_undefined_ratios_are_none():
    only_answered = [make_row(), make_row()]
    agg = ev.aggregate(only_answered)
    assert agg["abstention"] == {"precision": None, "recall": None, "false_abstentions": 0, "false_abstention_rate": 0.0,
                                 "near_miss_recall": None, "off_topic_recall": None}
    agg = ev.aggregate([make_row(answerable=False, found=False)])
    assert agg["hit@1"] is None and agg["answer_accuracy"] is None
    assert agg["abstention"]["recall"] == 1.0


def test_answerable_rows_without_evidence_count_for_answers_only():
    rows = [make_row(), make_row(evidence=None)]
    rows[1]["hit@1"] = rows[1]["hit@3"] = rows[1]["hit@5"] = rows[1]["mrr@10"] = rows[1]["ndcg@10"] = None
    rows[1]["answer_correct"] = False
    agg = ev.aggregate(rows)
    assert agg["hit@1"] == 1.0
    assert agg["answer_accuracy"] == 0.5


def test_summarize_breaks_down_by_language():
    s = ev.summarize(ROWS)
    assert set(s["by_language"]) == {"en", "fr"}
    assert s["by_language"]["en"]["hit@1"] == 1.0
    assert s["by_language"]["fr"]["abstention"] == {"precision": 0.0, "recall": 0.0, "false_abstentions": 1, "false_abstention_rate": 0.5,
                                                    "near_miss_recall": 0.0, "off_topic_recall": None}
    assert "by_language" not in s["by_language"]["en"]


SUMMARY_KEYS = {"hit@1", "hit@3", "hit@5", "mrr@10", "ndcg@10", "answer_accuracy", "abstention", "latency_ms", "by_language",
                "follow_up_accuracy", "conflicts"}


def test_build_report_has_exactly_the_documented_shape():
    rows = ROWS + [dict(r, mode="lexical") for r in ROWS]
    report = ev.build_report(rows)
    assert list(report) == ["modes", "questions"]
    assert list(report["modes"]) == ["hybrid", "lexical"]
    for summary in report["modes"].values():
        assert set(summary) == SUMMARY_KEYS
        assert set(summary["abstention"]) == {"precision", "recall", "false_abstentions", "false_abstention_rate",
                                              "near_miss_recall", "off_topic_recall"}
        assert set(summary["latency_ms"]) == {"p50", "p95"}
        for lang in summary["by_language"].values():
            assert set(lang) == SUMMARY_KEYS - {"by_language"}
    assert report["questions"] == rows and all("mode" in r for r in report["questions"])
    json.dumps(report)  # serialisable


def test_counts_and_misses():
    c = ev.counts(ROWS + [make_row(history=["before?"])])
    assert c == {"questions": 6, "answerable": 4, "unanswerable": 2, "follow_ups": 1, "by_language": {"en": 3, "fr": 3}}
    assert [r["outcome"] for r in ev.misses(ROWS)] == ["wrong_answer", "false_abstention", "answered_unanswerable"]


# ---- floors ------------------------------------------------------------------------------------------


def test_check_floors():
    summary = ev.summarize(ROWS)
    assert ev.check_floors(summary, {"hit@1": 0.3, "abstention_recall": 0.5, "max_false_abstentions": 1, "_note": "x"}) == []
    failures = ev.check_floors(summary, {"hit@1": 0.5, "answer_accuracy": 0.4, "max_false_abstentions": 0})
    assert len(failures) == 3
    assert any("hit@1 = 0.3333 is below the floor 0.5" in f for f in failures)
    assert any("false_abstentions = 1 is above the ceiling 0" in f for f in failures)


def test_check_floors_undefined_and_unknown_metrics():
    summary = ev.summarize([make_row()])
    assert ev.check_floors(summary, {"abstention_recall": 0.5}) == ["abstention_recall is undefined (bound 0.5)"]
    with pytest.raises(KeyError):
        ev.check_floors(summary, {"bogus": 1})
    assert ev.metric_value(summary, "latency_ms.p50") == 10.0


def test_repo_floors_file_is_well_formed():
    floors = json.loads((Path(__file__).resolve().parents[1] / "eval" / "floors.json").read_text(encoding="utf-8"))
    assert "test" in floors  # floors hold on the held-out test split (tests/test_eval_floors.py)
    summary = ev.summarize([make_row(), make_row(answerable=False, found=False)])
    for split, bounds in floors.items():
        if split.startswith("_"):
            continue
        assert split in ("dev", "test")
        ev.check_floors(summary, bounds)  # every key resolves


# ---- the runner, with a stub assistant -------------------------------------------------------------


@dataclass
class StubAnswer:
    payload: dict

    def to_dict(self) -> dict:
        return dict(self.payload)


@dataclass
class StubIndex:
    passages: list[str]

    def counts(self) -> dict:
        return {"documents": 1, "chunks": len(self.passages), "sentences": len(self.passages)}

    def chunk_text(self, i: int) -> str:
        return self.passages[i]

    def ids(self, level: str) -> range:
        return range(len(self.passages))


class StubAssistant:
    """Answers from a table; records every call."""

    def __init__(self):
        self.index = StubIndex(["Rosa Quintana coprésidera le sommet.", "Quintana coprésidera aussi.", "Sans rapport."])
        self.calls: list[tuple] = []

    def ask(self, question, history=None, k=5, mode="hybrid"):
        self.calls.append((question, tuple(history or ()), k, mode))
        if "weather" in question.lower():
            return StubAnswer(answer(False, "not found", []))
        passages = ["Sans rapport.", "Rosa Quintana coprésidera le sommet."] if mode == "lexical" else ["Rosa Quintana coprésidera le sommet."]
        return StubAnswer(answer(True, "Rosa Quintana", passages))


def test_run_modes_with_a_stub_assistant():
    questions = [ev.Question("q1", "Who co-chairs?", ["Quintana"], "Quintana coprésidera", True, ["Earlier?"], "en"),
                 ev.Question("q2", "What weather?", [], None, False, [], "en")]
    stub = StubAssistant()
    progress = []
    rows = ev.run_modes(stub, questions, ["hybrid", "lexical"], k=3, progress=lambda m, d, t: progress.append((m, d, t)))
    assert [(r["mode"], r["id"]) for r in rows] == [("hybrid", "q1"), ("hybrid", "q2"), ("lexical", "q1"), ("lexical", "q2")]
    assert progress == [("hybrid", 1, 2), ("hybrid", 2, 2), ("lexical", 1, 2), ("lexical", 2, 2)]
    # the follow-up's history is passed on, k and mode too
    assert ("Who co-chairs?", ("Earlier?",), 3, "lexical") in stub.calls
    hybrid, lexical = rows[0], rows[2]
    assert hybrid["hit@1"] == 1.0 and lexical["hit@1"] == 0.0 and lexical["hit@3"] == 1.0
    # two passages of the index hold the evidence: one found at rank 1 -> nDCG < 1
    assert hybrid["ndcg@10"] == pytest.approx(round(1 / (1 + 1 / math.log2(3)), 4))
    assert rows[1]["outcome"] == "correct_abstention"
    assert all(r["took_ms"] >= 0 for r in rows)
    report = ev.build_report(rows)
    assert report["modes"]["hybrid"]["abstention"]["recall"] == 1.0


# ---- reporting ---------------------------------------------------------------------------------------


def sample_report() -> dict:
    rows = [dict(r, id=f"q{i}") for i, r in enumerate(ROWS)]
    rows += [dict(r, mode="dense") for r in rows]
    report = ev.build_report(rows)
    report["beir"] = {"dataset": "x", "corpus": 8, "queries": 5, "chunks": 8,
                      "modes": {"hybrid": {"ndcg@10": 0.9, "recall@10": 1.0, "mrr@10": 0.8}}, "per_query": []}
    return report


def test_markdown_report_has_tables_misses_and_beir():
    md = reporting.markdown_report(sample_report(), meta={"k": 5})
    assert md.startswith("# Summit Assistant evaluation")
    assert "- **k**: 5" in md
    assert "| metric | hybrid | dense |" in md
    assert "| hit@1 | 0.333 | 0.333 |" in md
    assert "| metric | hybrid en | hybrid fr | dense en | dense fr |" in md
    assert "## Misses (6)" in md
    assert "false abstention" in md and "answered an unanswerable" in md
    assert "## BEIR" in md and "| nDCG@10 | 0.900 |" in md


def test_markdown_escapes_pipes():
    rows = [make_row(correct=False)]
    rows[0]["question"] = "a | b"
    rows[0]["outcome"] = ev.outcome(rows[0])
    assert "a \\| b" in reporting.markdown_report(ev.build_report(rows))


def test_rich_tables_have_one_column_per_mode():
    from rich.console import Console

    report = sample_report()
    assert [c.header for c in reporting.modes_table(report).columns] == ["metric", "hybrid", "dense"]
    assert len(reporting.language_table(report).columns) == 5
    console = Console(width=100, record=True)
    console.print(reporting.misses_view(report["questions"]))
    console.print(reporting.beir_table(report["beir"]))
    text = console.export_text()
    assert "misses (6)" in text and "expected: (abstain)" in text and "nDCG@10" in text


def test_plot_report_writes_a_png(tmp_path):
    path = reporting.plot_report(sample_report(), tmp_path / "sub" / "modes.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fmt():
    assert reporting.fmt(None) == "—"
    assert reporting.fmt(3) == "3"
    assert reporting.fmt(0.12345) == "0.123"
    assert reporting.fmt(12.345, "latency_ms.p50") == "12.3"


# ---- the command -------------------------------------------------------------------------------------

runner = CliRunner()


def test_eval_command_missing_file_exits_with_one_line(tmp_path):
    from assistant.cli import app

    result = runner.invoke(app, ["eval", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == InvalidInputError.exit_code
    assert "not found" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [(["--split", "train"], "--split must be"), (["--mode", "fast"], "mode must be one of"), (["--k", "0"], "k must be")])
def test_eval_command_rejects_bad_arguments_before_loading(tmp_path, args, message):
    from assistant.cli import app

    path = write_lines(tmp_path / "q.jsonl", [GOOD])
    result = runner.invoke(app, ["eval", *([str(path)] if args[0] != "--split" else []), *args])
    assert result.exit_code == 2
    assert message in result.output


def test_eval_command_invalid_file(tmp_path):
    from assistant.cli import app

    path = write_lines(tmp_path / "q.jsonl", [GOOD, "{oops"])
    result = runner.invoke(app, ["eval", str(path)])
    assert result.exit_code == 2 and f"{path}:2:" in result.output


def test_eval_command_end_to_end_with_a_stub_assistant(tmp_path, monkeypatch):
    from assistant import cli

    class Loaded(StubAssistant):
        embedder = type("E", (), {"id": "stub-model"})()

        def __init__(self):
            super().__init__()
            self.index.build_id = "stub-build"

    monkeypatch.setattr(cli, "load_assistant", lambda settings, **kw: Loaded())
    path = write_lines(tmp_path / "q.jsonl", [GOOD, {"id": "q02", "question": "What weather?", "answerable": False, "lang": "en"}])
    out = tmp_path / "out"
    result = runner.invoke(cli.app, ["eval", str(path), "--mode", "all", "--json", str(out / "r.json"), "--report", str(out / "r.md"),
                                     "--plot", str(out / "r.png"), "--index", str(tmp_path / "index")])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "r.json").read_text(encoding="utf-8"))
    assert list(data) == ["modes", "questions"]
    assert list(data["modes"]) == ["hybrid", "dense", "lexical"]
    assert set(data["modes"]["dense"]) == SUMMARY_KEYS
    assert len(data["questions"]) == 6
    assert "| metric | hybrid | dense | lexical |" in (out / "r.md").read_text(encoding="utf-8")
    assert (out / "r.png").read_bytes()[:4] == b"\x89PNG"
    assert "hit@1" in result.output and "misses" in result.output


def _without_matplotlib(monkeypatch):
    import sys

    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError


def test_plot_without_matplotlib_is_a_summit_error_naming_the_extra(tmp_path, monkeypatch):
    from assistant.errors import SummitError

    _without_matplotlib(monkeypatch)
    with pytest.raises(SummitError, match=r"pip install 'summit-assistant\[eval\]'"):
        reporting.require_matplotlib()
    with pytest.raises(SummitError, match=r"summit-assistant\[eval\]"):
        reporting.plot_report(sample_report(), tmp_path / "modes.png")


def test_eval_plot_without_matplotlib_fails_in_one_line_before_loading(tmp_path, monkeypatch):
    from assistant import cli

    def never(*a, **kw):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(cli, "load_assistant", never)
    _without_matplotlib(monkeypatch)
    path = write_lines(tmp_path / "q.jsonl", [GOOD])
    result = runner.invoke(cli.app, ["eval", str(path), "--plot", str(tmp_path / "r.png"), "--index", str(tmp_path / "index")])
    assert result.exit_code == 1, result.output
    assert "pip install 'summit-assistant[eval]'" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "r.png").exists()


def test_reports_show_evidence_alternatives():
    rows = [make_row(correct=False, evidence=["quintana coprésidera", "partagera la présidence"])]
    rows[0]["outcome"] = ev.outcome(rows[0])
    md = reporting.markdown_report(ev.build_report(rows))
    assert "quintana coprésidera \\| partagera la présidence" in md  # pipes escaped in the table
