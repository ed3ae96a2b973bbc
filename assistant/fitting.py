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
import zlib
from dataclasses import dataclass

import numpy as np

from . import abstention
from . import centring
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


def fit_query_means(runs) -> dict:
    """The dev questions' mean vector per encoder and language (centring.py), keyed by encoder
    id: {id: {language: vector}}. Every distinct dev question counts once, as asked alone."""
    by_encoder: dict[str, dict[str, list]] = {}
    seen: set[str] = set()
    for assistant, qs in runs:
        _, retriever, _ = assistant._parts()
        ids = retriever.encoders.ids[: retriever.store.n_encoders]
        for q in qs:
            if q.question in seen:
                continue
            seen.add(q.question)
            query = retriever.analyze(q.question)
            for eid, v in zip(ids, query.own_vectors):
                by_encoder.setdefault(eid, {}).setdefault(query.language, []).append(v)
    return {eid: centring.query_means(by_lang) for eid, by_lang in by_encoder.items()}


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
    "answer_weight": (0.3, 0.6, 1.0),
    "agreement_weight": (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0),
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
    # Language centring first: the features below are computed with it (centring.py).
    centred = all(getattr(a.settings, "centring", True) for a, _ in runs)
    weights.query_means = fit_query_means(runs) if centred else {}

    def install():
        for assistant, _ in runs:
            _, retriever, answerer = assistant._parts()
            retriever.set_query_means(weights.query_means)
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

    def fit_abstention(stage: str):
        Xa, ya = abstain_rows(run_all(stage))
        model = _fit_logistic(Xa, ya, abstention.ABSTAIN_FEATURES, C=ABSTAIN_C, balanced=True)
        p = model.proba(Xa)
        model.threshold = choose_threshold(p, ya, max_false_rate)
        weights.abstain = model
        install()
        return model, p, ya

    # Two rounds: features such as follow-up context depend on earlier answers, which depend on
    # both models; the second round sees the first round's. Between them the abstention model is
    # fitted too: from unfitted weights (a new feature) every earlier answer would be refused,
    # and the follow-up features would be fitted as if no conversation ever had an answer.
    for round_ in (1, 2):
        traces = run_all(f"sentences, round {round_}")
        X, y, _ = sentence_rows(traces)
        weights.sentence = _fit_logistic(X, y, SENTENCE_FEATURES, C=C, balanced=False)
        install()
        if round_ == 1 and not base.abstain.meta.get("fitted", True):
            fit_abstention("abstention, round 1")

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


# ---- leave-one-article-out cross-validation (``summit fit --cv``) -------------------------------
# How well would the models, fitted as above, do on an article they were not fitted on? Each
# dev article in turn is held out: both models are fitted on the others' questions and judged
# on its own. This is how a feature or a setting should be judged before it goes in (and the
# test split stays unread).


OFF_TOPIC_FOLDS = 4


def article_of(q: ev.Question) -> str:
    """The fold a question belongs to: its article, or documents/ for the seed questions. An
    off-topic question belongs to no article: they are dealt into a few folds of their own by
    id, so that each held-out one is judged by a model that saw the others (in the seed fold,
    all of them were held out at once and the model never saw one)."""
    if q.kind == "off_topic" and not q.doc:
        return f"off-topic/{zlib.crc32(q.id.encode('utf-8')) % OFF_TOPIC_FOLDS}"
    return q.doc or "documents/"


def cv_sentences(X: np.ndarray, y: np.ndarray, groups: np.ndarray, articles: np.ndarray,
                 questions_by_article: dict[str, int], *, C: float = 0.5) -> dict:
    """Held-out top-1 / top-3 of the sentence scorer, one fold per article. ``groups`` gives
    each row's question; ``questions_by_article`` counts every answerable question of an article,
    including those whose evidence retrieval missed (they count as misses)."""
    top1 = top3 = 0
    folds = {}
    for art in sorted(questions_by_article):
        train = articles != art
        f1 = f3 = 0
        if train.any() and y[train].any() and not y[train].all():
            model = _fit_logistic(X[train], y[train], tuple(f"f{i}" for i in range(X.shape[1])), C=C, balanced=False)
            for g in np.unique(groups[~train]):
                rows = np.flatnonzero(groups == g)
                order = rows[np.argsort(-model.logit(X[rows]), kind="stable")]
                f1 += int(y[order[0]] == 1)
                f3 += int(y[order[:3]].any())
        n = questions_by_article[art]
        folds[art] = {"questions": n, "top1": round(f1 / n, 4) if n else None}
        top1 += f1
        top3 += f3
    total = sum(questions_by_article.values())
    return {"questions": total, "top1": round(top1 / total, 4) if total else None,
            "top3": round(top3 / total, 4) if total else None, "folds": folds}


def cv_abstention(X: np.ndarray, answerable: np.ndarray, articles: np.ndarray, kinds: list[str], *,
                  max_false_rate: float = MAX_FALSE_ABSTENTION_RATE, C: float = ABSTAIN_C) -> dict:
    """Held-out abstention, one fold per article: each question's confidence comes from a model
    fitted without its article; one threshold over them all keeps the false abstentions within
    budget. Recall by kind of unanswerable question, precision, and the ranking quality (AUC)."""
    p = np.full(len(answerable), np.nan)
    for art in np.unique(articles):
        train = articles != art
        if len(np.unique(answerable[train])) < 2:
            continue
        model = _fit_logistic(X[train], answerable[train], tuple(f"f{i}" for i in range(X.shape[1])), C=C, balanced=True)
        p[~train] = model.proba(X[~train])
    ok = ~np.isnan(p)
    p, y, kinds_arr = p[ok], answerable[ok], np.array(kinds, dtype=object)[ok]
    t = choose_threshold(p, y, max_false_rate)
    refused = p < t
    out = {"questions": int(len(y)), "false_abstentions": int((refused & (y == 1)).sum()),
           "precision": round(float((refused & (y == 0)).sum() / refused.sum()), 4) if refused.any() else None}
    for kind in ("near_miss", "off_topic"):
        sel = kinds_arr == kind
        out[f"{kind}_recall"] = round(float((refused & sel).sum() / sel.sum()), 4) if sel.any() else None
    if 0 < y.sum() < len(y):
        from sklearn.metrics import roc_auc_score

        out["auc"] = round(float(roc_auc_score(y, p)), 4)
    return out


def cross_validate(runs, *, mode: str = "hybrid", C: float = 0.5, max_false_rate: float = MAX_FALSE_ABSTENTION_RATE,
                   progress=None) -> dict:
    """Leave-one-article-out figures for the dev split, with the features as the installed
    weights produce them (follow-up context depends on earlier answers). Writes nothing."""
    traces: list[Trace] = []
    total = sum(len(qs) for _, qs in runs)
    for assistant, qs in runs:
        assistant._answers = type(assistant._answers)(0)
        for q in qs:
            traces.append(trace(assistant, q, mode))
            if progress:
                progress("cross-validation", len(traces), total)
    X, y, g = sentence_rows(traces)
    arts = np.array([article_of(traces[i].question) for i in g], dtype=object) if len(g) else np.array([], dtype=object)
    per_article: dict[str, int] = {}
    for t in traces:
        if t.question.answerable and t.question.evidence:
            per_article[article_of(t.question)] = per_article.get(article_of(t.question), 0) + 1
    sentences = cv_sentences(X, y, g, arts, per_article, C=C) if len(y) else {"questions": 0}
    scored = [t for t in traces if t.scored]
    Xa, ya = abstain_rows(scored)
    kinds = [t.question.kind or ("answerable" if t.question.answerable else "near_miss") for t in scored]
    abst = cv_abstention(Xa, ya, np.array([article_of(t.question) for t in scored], dtype=object), kinds,
                         max_false_rate=max_false_rate) if len(ya) else {"questions": 0}
    return {"folds": len(per_article), "sentence": sentences, "abstention": abst}
