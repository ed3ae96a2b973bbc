"""Fit the answerer's weights on the dev split: ``summit fit`` writes assistant/weights.json.

1. Sentence scorer: every candidate sentence of every answerable dev question is a training
   row (features from scoring.py); it is positive when it holds the question's evidence. A
   logistic regression on standardised features.
2. Abstention: with that scorer in place, every dev question gives one row (abstention.py
   features of its best sentence); positive when the question is answerable. The threshold is
   the highest that keeps false abstentions at or under ``max_false_abstention_rate`` of the
   answerable dev questions, which is where precision is best for that budget.

The test split is never read here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import abstention
from . import evaluation as ev
from .scoring import SENTENCE_FEATURES, LogisticModel, Weights, load_weights

MAX_FALSE_ABSTENTION_RATE = 0.01
ABSTAIN_C = 0.1  # strong L2: measured by leave-one-article-out cross-validation on dev


def _fit_logistic(X: np.ndarray, y: np.ndarray, features: tuple[str, ...], *, C: float, balanced: bool) -> LogisticModel:
    from sklearn.linear_model import LogisticRegression

    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-9] = 1.0
    Z = (X - mean) / scale
    model = LogisticRegression(C=C, class_weight="balanced" if balanced else None, max_iter=5000)
    model.fit(Z, y)
    return LogisticModel(features, mean, scale, model.coef_[0].copy(), float(model.intercept_[0]), 0.5,
                         {"fitted": True, "rows": int(len(y)), "positives": int(y.sum()), "C": C})


def sentence_holds(text: str, evidence) -> bool:
    t = ev.norm(text)
    return any(ev.norm(e) in t for e in ev._evidences(evidence))


@dataclass
class Trace:
    """One question through the pipeline, for fitting and for the ablation."""

    question: ev.Question
    query: object
    scored: list  # ScoredSentence, best first
    answer: object
    assistant: object = None


def trace(assistant, q: ev.Question, mode: str = "hybrid", k: int = 5) -> Trace:
    """Run one question the way Assistant.ask does, keeping the scored sentences."""
    index, retriever, answerer = assistant._parts()
    turn = assistant._resolve(retriever, answerer, q.question, q.history)
    from . import conversation

    query = conversation.attach(retriever.analyze(turn.question, turn.context, history=q.history), turn)
    retrieved = retriever.retrieve(query, mode, n=max(30, k * 3))
    scored = answerer.score(retrieved)
    answer = answerer.answer(retrieved, k=k)
    return Trace(q, query, scored, answer, assistant)


def for_corpus(questions: list[ev.Question], texts: list[str]) -> list[ev.Question]:
    """The questions as they stand against one corpus: an answerable question whose evidence no
    article of it holds becomes a near-miss there (its facts are absent); the others are kept."""
    import dataclasses

    normed = [ev.norm(t) for t in texts]
    out = []
    for q in questions:
        if q.answerable and q.evidence:
            held = [e for e in ev._evidences(q.evidence) if any(ev.norm(e) in t for t in normed)]
            if not held:
                out.append(dataclasses.replace(q, answerable=False, answers=[], evidence=None, kind="near_miss",
                                               older_evidence=None))
                continue
            q = dataclasses.replace(q, evidence=held)
        out.append(q)
    return out


def sentence_rows(traces: list[Trace], store=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X, y, g = [], [], []
    for qi, t in enumerate(traces):
        if not t.question.answerable or not t.question.evidence:
            continue
        st = store if store is not None else t.assistant.index
        labels = [sentence_holds(st.sentence_text(s.sid), t.question.evidence) for s in t.scored]
        if not any(labels):
            continue  # retrieval missed it: nothing to learn about ranking here
        for s, lab in zip(t.scored, labels):
            X.append(s.x)
            y.append(1 if lab else 0)
            g.append(qi)
    return np.array(X), np.array(y), np.array(g)


def abstain_rows(traces: list[Trace]) -> tuple[np.ndarray, np.ndarray]:
    X, y = [], []
    for t in traces:
        if not t.scored:
            continue
        best = t.scored[0]
        second = t.scored[1] if len(t.scored) > 1 else None
        answerer = t.assistant.answerer
        X.append(abstention.features(t.query, best, second, t.query.qtype.answer_type not in (None, "yesno"), answerer.domain(t.query)))
        y.append(1 if t.question.answerable else 0)
    return np.array(X), np.array(y)


def choose_threshold(p: np.ndarray, y: np.ndarray, max_false_rate: float) -> float:
    """The highest threshold whose false abstentions (answerable below it) stay within budget."""
    pos = np.sort(p[y == 1])
    if not len(pos):
        return 0.5
    allowed = int(math.floor(max_false_rate * len(pos)))
    # abstain when p < t: with t = pos[allowed], exactly `allowed` answerable ones fall below
    t = float(pos[allowed]) if allowed < len(pos) else float(pos[-1])
    return max(0.0, t - 1e-6)


# Settings tuned on dev by grid search once the scorer is fitted (the answer metric decides).
GRID = {
    "conflict_margin": (0.0, 0.5, 1.0, 2.0),
    "context_weight": (0.3, 0.6, 0.9),
}


def _objective(rows: list[dict]) -> float:
    """Share of answerable dev questions answered right (a conflict also needs both sources cited)."""
    good = [r["answer_correct"] and (not r.get("conflict") or r["conflict"]["older_cited"]) for r in rows if r["answerable"]]
    return sum(good) / len(good) if good else 0.0


def tune_settings(runs, weights: Weights, progress=None) -> dict:
    """One setting at a time, each over its grid, keeping the best on dev over every corpus."""
    chosen = {}
    for name, values in GRID.items():
        results = []
        for v in values:
            weights.settings[name] = v
            rows = []
            for assistant, questions in runs:
                assistant._answers = type(assistant._answers)(0)
                rows += ev.run_questions(assistant, questions, mode="hybrid", k=5,
                                         progress=(lambda d, t, n=name, v=v: progress(f"tuning {n}={v}", d, t)) if progress else None)
            results.append((_objective(rows), v))
        best = max(results, key=lambda r: r[0])[1]
        weights.settings[name] = best
        chosen[name] = best
        chosen[f"{name}_dev_objective"] = {str(v): round(o, 4) for o, v in results}
    return chosen


def fit(runs, questions: list[ev.Question] | None = None, *, mode: str = "hybrid", C: float = 0.5,
        max_false_rate: float = MAX_FALSE_ABSTENTION_RATE, progress=None, settings: dict | None = None,
        tune: bool = True) -> tuple[Weights, dict]:
    """Fit both models on the dev split and install them in every assistant.

    ``runs``: (assistant, dev questions) pairs, one per corpus: the models must hold whether the
    index holds two articles or twenty, French only or both languages (a threshold fitted on
    one corpus alone did not transfer). ``fit(assistant, questions)`` is the one-corpus form.
    """
    if questions is not None:
        runs = [(runs, questions)]
    base = load_weights()
    weights = Weights(base.sentence, base.abstain, dict(base.settings, **(settings or {})))

    def install():
        for assistant, _ in runs:
            _, _, answerer = assistant._parts()
            answerer.weights = weights
            answerer.threshold = weights.abstain.threshold
            assistant._answers = type(assistant._answers)(0)  # no cached answers while refitting

    install()
    total = sum(len(qs) for _, qs in runs)

    def run_all(stage: str) -> list[Trace]:
        out = []
        for assistant, qs in runs:
            for q in qs:
                out.append(trace(assistant, q, mode))
                if progress:
                    progress(stage, len(out), total)
        return out

    # Two rounds: features such as follow-up context depend on earlier answers, which depend on
    # the scorer; the second round sees the first round's scorer.
    for round_ in (1, 2):
        traces = run_all(f"sentences, round {round_}")
        X, y, _ = sentence_rows(traces)
        weights.sentence = _fit_logistic(X, y, SENTENCE_FEATURES, C=C, balanced=False)
        install()

    def fit_abstention(stage: str):
        Xa, ya = abstain_rows(run_all(stage))
        model = _fit_logistic(Xa, ya, abstention.ABSTAIN_FEATURES, C=ABSTAIN_C, balanced=True)
        p = model.proba(Xa)
        model.threshold = choose_threshold(p, ya, max_false_rate)
        weights.abstain = model
        install()
        return model, p, ya

    model, p, ya = fit_abstention("abstention")
    if tune:  # the constants, with both models in place; then the abstention model again
        weights.settings.update(tune_settings(runs, weights, progress=progress))
        install()
        model, p, ya = fit_abstention("abstention, after tuning")
    # Structural refusal: a question most of whose meaning the corpus does not know at all cannot
    # be answered, whatever its conversation brings; the bound sits above every answerable dev
    # question (abstention.refuses_outright).
    j = abstention.ABSTAIN_FEATURES.index("weak")
    Xa, _ = abstain_rows(run_all("refusal bound"))
    answerable_weak = [x[j] for x, yy in zip(Xa, ya) if yy == 1]
    weights.settings["refuse_weak"] = round(min(0.95, max(answerable_weak, default=0.7) + 0.05), 4)
    install()
    abstained = p < model.threshold
    report = {
        "settings": {k: v for k, v in weights.settings.items()},
        "corpora": [{"documents": a.index.counts()["documents"], "questions": len(qs),
                     "answerable": sum(q.answerable for q in qs)} for a, qs in runs],
        "sentence_rows": int(len(y)), "sentence_positives": int(y.sum()),
        "abstain_rows": int(len(ya)), "threshold": round(model.threshold, 4),
        "dev_false_abstentions": int((abstained & (ya == 1)).sum()),
        "dev_abstention_recall": round(float((abstained & (ya == 0)).sum() / max(1, (ya == 0).sum())), 4),
        "dev_abstention_precision": round(float((abstained & (ya == 0)).sum() / max(1, abstained.sum())), 4),
    }
    return weights, report
