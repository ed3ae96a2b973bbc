"""Evaluation: pure metric functions over (questions, answers), and a runner that asks the
assistant every question of a JSONL set. Scripts around it only do file I/O and printing.

Layers, from the bottom:

* normalisation and relevance (``norm``, ``is_relevant``, ``answer_correct``);
* ranking metrics over relevance flags or ranked ids (hit@k, MRR, nDCG, recall);
* question files (``load_questions``) and per-question rows (``question_row``, ``outcome``);
* aggregates (``aggregate``, ``summarize``, ``build_report``) and floors (``check_floors``);
* the runner (``run_questions``, ``run_modes``), the only part that touches an assistant.

Everything except the runner is a pure function of its arguments and is unit-tested on
hand-made rows (tests/test_evaluation.py).
"""

from __future__ import annotations

import json
import math
import re
import time
import unicodedata
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Iterable

from . import stats
from .errors import InvalidInputError

EVAL_MODES: tuple[str, ...] = ("hybrid", "dense", "lexical")  # = retrieval.MODES, without importing numpy
RANK_DEPTH = 10  # MRR@10, nDCG@10

# ---- normalisation and relevance ------------------------------------------------------------


def norm(text: str) -> str:
    """NFKC, case-folded, typographic apostrophes and quotes unified, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text or "").casefold()
    text = text.translate(str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'", "«": '"', "»": '"',
                                         "“": '"', "”": '"', "\u00a0": " ", "\u202f": " "}))
    text = re.sub(r"\s+", " ", text).strip()
    # French typography puts a (thin) space inside guillemets: « sommet » == "sommet".
    return re.sub(r' ?" ?', '"', text)


def _evidences(evidence) -> list[str]:
    if not evidence:
        return []
    return [evidence] if isinstance(evidence, str) else [e for e in evidence if e]


def is_relevant(passage: str, evidence) -> bool:
    """The passage holds the evidence (a string, or a list of alternatives: any of them)."""
    p = norm(passage)
    return any(norm(e) in p for e in _evidences(evidence))


YES_NO_WORDS = {"oui": "yes", "yes": "yes", "non": "no", "no": "no"}


def fold_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def answer_correct(answer: str, answers: list[str], qtype: str | None = None) -> bool:
    """The answer contains one of the expected ones (case- and accent-insensitive); for a
    yes/no question its first word is the expected yes or no (in either language)."""
    a = fold_accents(norm(answer))
    if qtype == "yesno":
        first = re.split(r"[\s.,;:!—-]+", a, maxsplit=1)[0] if a else ""
        want = {YES_NO_WORDS.get(norm(x)) for x in answers}
        return YES_NO_WORDS.get(first) in want
    return any(norm(x) and fold_accents(norm(x)) in a for x in answers)


def count_relevant(passages: Iterable[str], evidence) -> int:
    """How many passages of a corpus contain the evidence (the ideal list for nDCG)."""
    evs = [norm(e) for e in _evidences(evidence)]
    if not evs:
        return 0
    return sum(any(e in norm(p) for e in evs) for p in passages)


# ---- ranking metrics over a list of relevance flags (best first) --------------------------


def hit_at(flags: list[bool], k: int) -> float:
    return 1.0 if any(flags[:k]) else 0.0


def mrr_at(flags: list[bool], k: int = RANK_DEPTH) -> float:
    for i, f in enumerate(flags[:k]):
        if f:
            return 1.0 / (i + 1)
    return 0.0


def ndcg_at(flags: list[bool], k: int = RANK_DEPTH, n_relevant: int | None = None) -> float:
    """Binary nDCG@k. ``n_relevant`` is how many relevant passages exist in the corpus; it is
    raised to the number retrieved when smaller, so the value never exceeds 1."""
    found = sum(1 for f in flags[:k] if f)
    dcg = sum(1.0 / math.log2(i + 2) for i, f in enumerate(flags[:k]) if f)
    ideal_n = min(k, max(found, n_relevant if n_relevant is not None else 1, 1))
    idcg = sum(1.0 / math.log2(i + 2) for i in range(ideal_n))
    return dcg / idcg if idcg else 0.0


# ---- ranking metrics over ranked ids and graded judgements (BEIR) ---------------------------


def dedupe_ranking(ids: Iterable[str]) -> list[str]:
    """Keep each id at its best (first) rank: chunks of one document count once for it."""
    seen: set[str] = set()
    out = []
    for i in ids:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def ndcg_graded(ranked: list[str], qrels: dict[str, int], k: int = RANK_DEPTH) -> float:
    """nDCG@k with linear gains (trec_eval / pytrec_eval, as BEIR reports it)."""
    dcg = sum(qrels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]) if qrels.get(d, 0) > 0)
    ideal = sorted((g for g in qrels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: list[str], relevant: set[str], k: int = RANK_DEPTH) -> float:
    if not relevant:
        return 0.0
    return len(set(ranked[:k]) & relevant) / len(relevant)


def mrr_ids(ranked: list[str], relevant: set[str], k: int = RANK_DEPTH) -> float:
    return mrr_at([d in relevant for d in ranked], k)


def ranking_metrics(ranked: list[str], qrels: dict[str, int], k: int = RANK_DEPTH) -> dict:
    """nDCG@k, recall@k and MRR@k of one query; ``ranked`` is deduplicated first."""
    ranked = dedupe_ranking(ranked)
    relevant = {d for d, g in qrels.items() if g > 0}
    return {
        f"ndcg@{k}": round(ndcg_graded(ranked, qrels, k), 4),
        f"recall@{k}": round(recall_at(ranked, relevant, k), 4),
        f"mrr@{k}": round(mrr_ids(ranked, relevant, k), 4),
    }


def mean_metrics(rows: list[dict], keys: Iterable[str]) -> dict:
    return {key: round(sum(r[key] for r in rows) / len(rows), 4) if rows else None for key in keys}


# Linear interpolation (assistant.stats); a report of no timed questions shows 0.0 ms.
percentile = partial(stats.percentile, empty=0.0)


# ---- question sets ------------------------------------------------------------------------


KINDS = ("answerable", "near_miss", "off_topic")
QTYPES = ("who", "what", "when", "where", "how_much", "how_many", "which", "yesno", "why", "how_long")


@dataclass
class Question:
    id: str
    question: str
    answers: list[str] = field(default_factory=list)
    evidence: str | list[str] | None = None
    answerable: bool = True
    history: list[str] = field(default_factory=list)
    lang: str | None = None
    doc: str | None = None  # the article the question is about (the split is by article)
    type: str | None = None  # who, what, when, ... (for the breakdown; yesno changes the check)
    kind: str | None = None  # answerable, near_miss (plausible, not covered), off_topic
    older_evidence: str | None = None  # sources disagree: the older article's version


def _is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(x, str) for x in value)


def parse_question(row: object, default_id: str) -> Question:
    """One question line (already JSON-decoded). Raises ValueError saying what is wrong."""
    if not isinstance(row, dict):
        raise ValueError(f"expected a JSON object, got {type(row).__name__}")
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("'question' must be a non-empty string")
    qid = row.get("id", default_id)
    if isinstance(qid, bool) or not isinstance(qid, (str, int)) or not str(qid).strip():
        raise ValueError("'id' must be a non-empty string")
    answers = row.get("answers") or []
    if not _is_str_list(answers):
        raise ValueError("'answers' must be a list of strings")
    evidence = row.get("evidence")
    if isinstance(evidence, list):
        if not evidence or not all(isinstance(e, str) and e.strip() for e in evidence):
            raise ValueError("'evidence' must be a non-empty string, a list of them, or null")
    elif evidence is not None and (not isinstance(evidence, str) or not evidence.strip()):
        raise ValueError("'evidence' must be a non-empty string, a list of them, or null")
    answerable = row.get("answerable", True)
    if not isinstance(answerable, bool):
        raise ValueError("'answerable' must be true or false")
    if answerable and not answers and evidence is None:
        raise ValueError("an answerable question needs 'answers' or 'evidence'")
    if not answerable and (answers or evidence):
        raise ValueError("an unanswerable question cannot have 'answers' or 'evidence'")
    history = row.get("history") or []
    if not _is_str_list(history):
        raise ValueError("'history' must be a list of previous questions (strings)")
    lang = row.get("lang")
    if lang is not None and (not isinstance(lang, str) or not lang.strip()):
        raise ValueError("'lang' must be a language code such as \"fr\" or \"en\"")
    for key in ("doc", "type", "kind", "older_evidence"):
        value = row.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f"'{key}' must be a non-empty string or null")
    kind = row.get("kind") or ("answerable" if answerable else None)
    if kind is not None and kind not in KINDS:
        raise ValueError(f"'kind' must be one of {', '.join(KINDS)}")
    if kind in ("near_miss", "off_topic") and answerable:
        raise ValueError(f"a {kind} question must have answerable false")
    qtype = row.get("type")
    if qtype is not None and qtype not in QTYPES:
        raise ValueError(f"'type' must be one of {', '.join(QTYPES)}")
    return Question(str(qid), question, answers, evidence, answerable, history, lang.strip().lower() if lang else None,
                    row.get("doc"), qtype, kind, row.get("older_evidence"))


def load_questions(path: Path) -> list[Question]:
    """Read a JSONL question file; any problem is an InvalidInputError naming the file and line."""
    path = Path(path)
    if not path.exists():
        raise InvalidInputError(f"question file {path} not found")
    if not path.is_file():
        raise InvalidInputError(f"question file {path} is not a file")
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"question file {path} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise InvalidInputError(f"question file {path} cannot be read ({exc.strerror})") from None
    out, seen = [], set()
    for n, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            q = parse_question(json.loads(line), f"line{n}")
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            raise InvalidInputError(f"{path}:{n}: not a valid question line ({exc}); see eval/README.md") from None
        if q.id in seen:
            raise InvalidInputError(f"{path}:{n}: duplicate id {q.id!r}")
        seen.add(q.id)
        out.append(q)
    if not out:
        raise InvalidInputError(f"{path} holds no questions")
    return out


def load_question_files(paths: Iterable[Path]) -> list[Question]:
    """Several question files as one set; ids must stay unique across them."""
    out: list[Question] = []
    seen: dict[str, Path] = {}
    for path in paths:
        for q in load_questions(path):
            if q.id in seen:
                raise InvalidInputError(f"{path}: id {q.id!r} is already used in {seen[q.id]}")
            seen[q.id] = Path(path)
            out.append(q)
    return out


def split_files(splits_file: Path, split: str) -> list[Path]:
    """The question files of a split, from eval/splits.json ({"dev": [globs], "test": [globs]})."""
    splits_file = Path(splits_file)
    try:
        spec = json.loads(splits_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"split file {splits_file} not found") from None
    except ValueError as exc:
        raise InvalidInputError(f"split file {splits_file} is not valid JSON ({exc})") from None
    if split not in spec or split.startswith("_"):
        names = ", ".join(k for k in spec if not k.startswith("_"))
        raise InvalidInputError(f"no split {split!r} in {splits_file} (there are: {names})")
    root = splits_file.parent
    files: list[Path] = []
    for pattern in spec[split]:
        matched = sorted(root.glob(pattern))
        if not matched:
            raise InvalidInputError(f"{splits_file}: pattern {pattern!r} of split {split!r} matches no file")
        files += [m for m in matched if m not in files]
    return files


def parse_modes(mode: str) -> list[str]:
    """'all' -> every retrieval mode; otherwise one mode or a comma-separated list."""
    if mode == "all":
        return list(EVAL_MODES)
    modes = [m.strip() for m in (mode or "").split(",") if m.strip()]
    bad = [m for m in modes if m not in EVAL_MODES]
    if not modes or bad:
        raise InvalidInputError(f"mode must be one of {', '.join(EVAL_MODES)} or all, got {mode!r}")
    return list(dict.fromkeys(modes))


# ---- per-question rows ------------------------------------------------------------------------

# Outcomes of one question; the first two are successes, the rest are "misses".
OUTCOMES = ("correct", "correct_abstention", "evidence_not_cited", "wrong_answer", "false_abstention",
            "answered_unanswerable")


def outcome(row: dict) -> str:
    if not row["answerable"]:
        return "answered_unanswerable" if row["found"] else "correct_abstention"
    if not row["found"]:
        return "false_abstention"
    if row["expected"] and not row["answer_correct"]:
        return "wrong_answer"
    if row["evidence"] and row["relevant_rank"] is None:
        return "evidence_not_cited"
    return "correct"


def is_miss(row: dict) -> bool:
    return row["outcome"] not in ("correct", "correct_abstention")


def question_row(q: Question, answer: dict, k_eval: int = RANK_DEPTH, *, mode: str | None = None,
                 n_relevant: int | None = None) -> dict:
    """One evaluated question. ``answer`` is Answer.to_dict() (plus "took_ms"); ``n_relevant``
    is how many passages of the index contain the evidence (for nDCG), when known."""
    flags = [is_relevant(c["passage"], q.evidence) for c in answer["citations"]][:k_eval]
    found = bool(answer["found"])
    ranked = q.answerable and q.evidence is not None  # ranking metrics are defined
    row = {
        "mode": mode,
        "id": q.id,
        "lang": q.lang or answer.get("language"),
        "question": q.question,
        "history": q.history,
        "answerable": q.answerable,
        "found": found,
        "answer": answer["answer"],
        "expected": q.answers,
        "evidence": q.evidence,
        "relevant_rank": next((i + 1 for i, f in enumerate(flags) if f), None),
        "hit@1": hit_at(flags, 1) if ranked else None,
        "hit@3": hit_at(flags, 3) if ranked else None,
        "hit@5": hit_at(flags, 5) if ranked else None,
        "mrr@10": round(mrr_at(flags, 10), 4) if ranked else None,
        "ndcg@10": round(ndcg_at(flags, 10, n_relevant=n_relevant), 4) if ranked else None,
        "answer_correct": bool(found and q.answerable and answer_correct(answer["answer"], q.answers, q.type)),
        "kind": q.kind or ("answerable" if q.answerable else "near_miss"),
        "type": q.type,
        "doc": q.doc,
        "conflict": None if not q.older_evidence else {
            "newest_first": bool(flags[:1] and flags[0]),
            "older_cited": any(is_relevant(c["passage"], q.older_evidence) for c in answer["citations"][:k_eval]),
        },
        "took_ms": answer["took_ms"],
        "cited": [c.get("chunk_id") for c in answer["citations"]],
        "top_passage": answer["citations"][0]["passage"] if answer["citations"] else None,
    }
    row["outcome"] = outcome(row)
    return row


# ---- aggregates ---------------------------------------------------------------------------


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def aggregate(rows: list[dict]) -> dict:
    """The metrics of a set of rows (one mode). Undefined ratios (nothing to divide by) are None.

    Ranking metrics average over answerable questions with evidence; answer accuracy over
    answerable questions with expected answers; abstention precision = share of abstentions
    that were on unanswerable questions, recall = share of unanswerable questions abstained on.
    """
    ranked = [r for r in rows if r["answerable"] and r["hit@1"] is not None]
    with_answers = [r for r in rows if r["answerable"] and r["expected"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    abstained = [r for r in rows if not r["found"]]
    correct_abstentions = [r for r in abstained if not r["answerable"]]

    def mean(key: str) -> float | None:
        return round(sum(r[key] for r in ranked) / len(ranked), 4) if ranked else None

    lat = [r["took_ms"] for r in rows]
    follow = [r for r in with_answers if r["history"]]
    near = [r for r in rows if r.get("kind") == "near_miss"]
    off = [r for r in rows if r.get("kind") == "off_topic"]
    conflicts = [r for r in rows if r.get("conflict")]
    false_abst = sum(1 for r in rows if r["answerable"] and not r["found"])
    answerable = [r for r in rows if r["answerable"]]
    return {
        "hit@1": mean("hit@1"),
        "hit@3": mean("hit@3"),
        "hit@5": mean("hit@5"),
        "mrr@10": mean("mrr@10"),
        "ndcg@10": mean("ndcg@10"),
        "answer_accuracy": _ratio(sum(r["answer_correct"] for r in with_answers), len(with_answers)),
        "abstention": {
            "precision": _ratio(len(correct_abstentions), len(abstained)),
            "recall": _ratio(len(correct_abstentions), len(unanswerable)),
            "false_abstentions": false_abst,
            "false_abstention_rate": _ratio(false_abst, len(answerable)),
            "near_miss_recall": _ratio(sum(not r["found"] for r in near), len(near)),
            "off_topic_recall": _ratio(sum(not r["found"] for r in off), len(off)),
        },
        "follow_up_accuracy": _ratio(sum(r["answer_correct"] for r in follow), len(follow)),
        "conflicts": {
            "questions": len(conflicts),
            "newest_answer": _ratio(sum(r["answer_correct"] for r in conflicts), len(conflicts)),
            "both_cited": _ratio(sum(r["conflict"]["newest_first"] and r["conflict"]["older_cited"] for r in conflicts), len(conflicts)),
        },
        "latency_ms": {"p50": round(percentile(lat, 50), 3), "p95": round(percentile(lat, 95), 3)},
    }


def summarize(rows: list[dict]) -> dict:
    out = aggregate(rows)
    langs = sorted({r["lang"] for r in rows if r["lang"]})
    out["by_language"] = {lang: aggregate([r for r in rows if r["lang"] == lang]) for lang in langs}
    return out


def build_report(rows: list[dict]) -> dict:
    """The --json document: {"modes": {mode: summary}, "questions": rows}; modes keep run order."""
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    return {"modes": {m: summarize([r for r in rows if r["mode"] == m]) for m in modes}, "questions": rows}


def counts(rows: list[dict]) -> dict:
    """Question counts of one mode's rows (for headers; not part of the JSON summary)."""
    return {
        "questions": len(rows),
        "answerable": sum(r["answerable"] for r in rows),
        "unanswerable": sum(not r["answerable"] for r in rows),
        "follow_ups": sum(bool(r["history"]) for r in rows),
        "by_language": {lang: sum(r["lang"] == lang for r in rows) for lang in sorted({r["lang"] for r in rows if r["lang"]})},
    }


def misses(rows: list[dict]) -> list[dict]:
    return [r for r in rows if is_miss(r)]


# ---- floors ------------------------------------------------------------------------------------


def metric_value(summary: dict, name: str) -> float | None:
    """Look a floor name up in a mode summary: "hit@1", "answer_accuracy", "abstention_recall",
    "abstention_precision", "false_abstentions", or a dotted path such as "latency_ms.p95"."""
    if name.startswith("abstention_"):
        return summary["abstention"].get(name[len("abstention_"):])
    if name == "false_abstentions":
        return summary["abstention"]["false_abstentions"]
    value: object = summary
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(f"unknown metric {name!r}")
        value = value[part]
    return value  # type: ignore[return-value]


def check_floors(summary: dict, floors: dict) -> list[str]:
    """Every way a mode summary falls short of its floors, as messages; empty means it passes.

    A key ``max_<metric>`` is a ceiling (e.g. max_false_abstentions), any other key a floor.
    An undefined metric (None) fails its bound.
    """
    failures = []
    for key, bound in floors.items():
        if key.startswith("_"):  # comments
            continue
        ceiling = key.startswith("max_")
        name = key[4:] if ceiling else key
        value = metric_value(summary, name)
        if value is None:
            failures.append(f"{name} is undefined (bound {bound})")
        elif ceiling and value > bound:
            failures.append(f"{name} = {value} is above the ceiling {bound}")
        elif not ceiling and value < bound:
            failures.append(f"{name} = {value} is below the floor {bound}")
    return failures


# ---- the runner ------------------------------------------------------------------------------

ProgressFn = Callable[[int, int], None]


def index_passages(assistant) -> list[str] | None:
    """Every chunk passage of the assistant's index (to count relevant passages for nDCG)."""
    index = getattr(assistant, "index", None)
    if index is None or not hasattr(index, "counts"):
        return None
    n = index.counts()["chunks"]
    return [index.chunk_text(i) for i in index.ids("chunk")] if n <= 200_000 else None


def run_questions(assistant, questions: list[Question], *, mode: str = "hybrid", k: int = 5,
                  progress: ProgressFn | None = None) -> list[dict]:
    """Ask every question in one mode; one row per question (with "mode")."""
    rows = []
    passages = index_passages(assistant)
    normed = [norm(p) for p in passages] if passages is not None else None
    assistant.ask(questions[0].question, k=k, mode=mode)  # warm caches; not timed
    for i, q in enumerate(questions):
        t0 = time.perf_counter()
        ans = assistant.ask(q.question, history=q.history, k=k, mode=mode).to_dict()
        ans["took_ms"] = round((time.perf_counter() - t0) * 1000, 3)
        evs = [norm(e) for e in _evidences(q.evidence)]
        n_rel = sum(any(e in p for e in evs) for p in normed) if (normed is not None and evs) else None
        rows.append(question_row(q, ans, mode=mode, n_relevant=n_rel))
        if progress:
            progress(i + 1, len(questions))
    return rows


def run_modes(assistant, questions: list[Question], modes: list[str], *, k: int = 5,
              progress: Callable[[str, int, int], None] | None = None) -> list[dict]:
    """Every question in every mode, with one loaded assistant; progress(mode, done, total)."""
    rows: list[dict] = []
    for mode in modes:
        step = (lambda done, total, m=mode: progress(m, done, total)) if progress else None
        rows += run_questions(assistant, questions, mode=mode, k=k, progress=step)
    return rows
