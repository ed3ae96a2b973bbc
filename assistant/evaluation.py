"""Evaluation: pure metric functions over (questions, answers), and a runner that asks the
assistant every question of a JSONL set. Scripts around it only do file I/O and printing."""

from __future__ import annotations

import json
import math
import re
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidInputError

# ---- normalisation and relevance ------------------------------------------------------------


def norm(text: str) -> str:
    """NFKC, case-folded, typographic apostrophes and quotes unified, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text or "").casefold()
    text = text.translate(str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "«": '"', "»": '"', "“": '"', "”": '"',
                                         "\u00a0": " ", "\u202f": " "}))
    return re.sub(r"\s+", " ", text).strip()


def is_relevant(passage: str, evidence: str | None) -> bool:
    return bool(evidence) and norm(evidence) in norm(passage)


def answer_correct(answer: str, answers: list[str]) -> bool:
    a = norm(answer)
    return any(norm(x) and norm(x) in a for x in answers)


# ---- ranking metrics over a list of relevance flags (best first) --------------------------


def hit_at(flags: list[bool], k: int) -> float:
    return 1.0 if any(flags[:k]) else 0.0


def mrr_at(flags: list[bool], k: int = 10) -> float:
    for i, f in enumerate(flags[:k]):
        if f:
            return 1.0 / (i + 1)
    return 0.0


def ndcg_at(flags: list[bool], k: int = 10, n_relevant: int | None = None) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, f in enumerate(flags[:k]) if f)
    ideal_n = min(k, n_relevant if n_relevant is not None else max(1, sum(flags)))
    idcg = sum(1.0 / math.log2(i + 2) for i in range(ideal_n))
    return dcg / idcg if idcg else 0.0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    pos = (len(s) - 1) * p / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


# ---- question sets ------------------------------------------------------------------------


@dataclass
class Question:
    id: str
    question: str
    answers: list[str] = field(default_factory=list)
    evidence: str | None = None
    answerable: bool = True
    history: list[str] = field(default_factory=list)
    lang: str | None = None


def load_questions(path: Path) -> list[Question]:
    out, seen = [], set()
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            q = Question(
                id=str(row.get("id") or f"line{n}"),
                question=row["question"],
                answers=list(row.get("answers") or []),
                evidence=row.get("evidence"),
                answerable=bool(row.get("answerable", True)),
                history=list(row.get("history") or []),
                lang=row.get("lang"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(f"{path}:{n}: not a valid question line ({exc}); see README 'Evaluation'") from None
        if q.id in seen:
            raise InvalidInputError(f"{path}:{n}: duplicate id {q.id!r}")
        seen.add(q.id)
        out.append(q)
    if not out:
        raise InvalidInputError(f"{path} holds no questions")
    return out


# ---- per-question rows and aggregates -----------------------------------------------------


def question_row(q: Question, answer: dict, k_eval: int = 10) -> dict:
    flags = [is_relevant(c["passage"], q.evidence) for c in answer["citations"]][:k_eval]
    found = answer["found"]
    return {
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
        "hit@1": hit_at(flags, 1),
        "hit@3": hit_at(flags, 3),
        "hit@5": hit_at(flags, 5),
        "mrr@10": mrr_at(flags, 10),
        "ndcg@10": ndcg_at(flags, 10, n_relevant=1),
        "answer_correct": bool(found and q.answerable and answer_correct(answer["answer"], q.answers)),
        "took_ms": answer["took_ms"],
        "top_passage": answer["citations"][0]["passage"] if answer["citations"] else None,
    }


def aggregate(rows: list[dict]) -> dict:
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    abstained = [r for r in rows if not r["found"]]
    correct_abstentions = [r for r in abstained if not r["answerable"]]

    def mean(key: str) -> float:
        return round(sum(r[key] for r in answerable) / len(answerable), 4) if answerable else 0.0

    lat = [r["took_ms"] for r in rows]
    return {
        "questions": len(rows),
        "answerable": len(answerable),
        "hit@1": mean("hit@1"),
        "hit@3": mean("hit@3"),
        "hit@5": mean("hit@5"),
        "mrr@10": mean("mrr@10"),
        "ndcg@10": mean("ndcg@10"),
        "answer_accuracy": round(sum(r["answer_correct"] for r in answerable) / len(answerable), 4) if answerable else 0.0,
        "abstention": {
            "precision": round(len(correct_abstentions) / len(abstained), 4) if abstained else 1.0,
            "recall": round(len(correct_abstentions) / len(unanswerable), 4) if unanswerable else 1.0,
            "false_abstentions": sum(1 for r in answerable if not r["found"]),
        },
        "latency_ms": {"p50": round(percentile(lat, 50), 3), "p95": round(percentile(lat, 95), 3)},
    }


def summarize(rows: list[dict]) -> dict:
    out = aggregate(rows)
    langs = sorted({r["lang"] for r in rows if r["lang"]})
    out["by_language"] = {lang: aggregate([r for r in rows if r["lang"] == lang]) for lang in langs}
    return out


def run_questions(assistant, questions: list[Question], *, mode: str = "hybrid", k: int = 5, progress=None) -> list[dict]:
    rows = []
    assistant.ask(questions[0].question, k=k, mode=mode)  # warm caches; not timed
    for i, q in enumerate(questions):
        t0 = time.perf_counter()
        ans = assistant.ask(q.question, history=q.history, k=k, mode=mode).to_dict()
        ans["took_ms"] = round((time.perf_counter() - t0) * 1000, 3)
        rows.append(question_row(q, ans))
        if progress:
            progress(i + 1, len(questions))
    return rows
