"""Abstention, the last stage: answer, or say plainly that the sources do not cover it.

A near-miss question names things the corpus knows ("Ilona Vesterberg") and asks for an attribute
it does not give ("her salary"). So the decision looks at the best evidence through the
question's key terms, not only at its overall score: is every proper name of the question
matched, is the weakest of its important words matched, is a thing of the asked type there.
A logistic model fitted on the dev split (fitting.py) combines these; its threshold is chosen
there for precision.
"""

from __future__ import annotations

import math

import numpy as np

from .scoring import sigmoid

# Few features, strongly regularised (fitting.py): a threshold fitted on one set of articles
# must hold on others (more features fitted dev better and test worse).
ABSTAIN_FEATURES: tuple[str, ...] = (
    "best_logit", "cov", "min_key", "weak", "ent_unknown_share", "type_fit",
    "cos0", "cos1", "own_words", "has_context", "domain0", "domain1",
)
ENTITY_KNOWN_STRENGTH = 0.4
# A question word whose best match anywhere in the corpus is weaker than this is treated as
# unknown to the sources (off-topic questions are made of such words).
WEAK_MATCH = 0.7


def refuses_outright(x: np.ndarray, settings: dict) -> bool:
    """Most of the question's meaning is unknown to the corpus (its words match nothing, not
    even through the dictionary or word vectors): no context can make it answerable. The bound
    is fitted on dev (above every answerable question's share)."""
    bound = float(settings.get("refuse_weak", 0.8))
    return float(x[ABSTAIN_FEATURES.index("weak")]) >= bound


def names_unknown(query) -> bool:
    """The question names someone or something the sources never mention (not as written, not
    in the dictionary, not through a close word vector): then no sentence can answer it, however
    well its other words match ("What did Angela Merkel say about AI?")."""
    return any(w.own and w.entity and w.strength < ENTITY_KNOWN_STRENGTH for w in query.words)


def features(query, best, second, kind_asked: bool, domain: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The abstention features of a question given its best and second scored sentences;
    ``domain``: the question's cosine with the corpus centroid of each encoder."""
    f = best.features
    own_entities = [w for w in query.words if w.own and w.entity]
    unknown = sum(1 for w in own_entities if w.strength < ENTITY_KNOWN_STRENGTH)
    own_words = sum(1 for w in query.words if w.own)
    own = [w for w in query.words if w.own]
    total = sum(w.importance for w in own)
    unknown_share = sum(w.importance for w in own if not w.terms) / total if total else 0.0
    weak_share = sum(w.importance for w in own if w.strength < WEAK_MATCH) / total if total else 0.0
    unknown_names = sum(w.importance for w in own if w.entity and w.strength < ENTITY_KNOWN_STRENGTH) / total if total else 0.0
    values = {
        # the best sentence's own evidence, not its corroboration by other articles (answering.py)
        "best_p": sigmoid(best.own_logit),
        "best_logit": best.own_logit,
        "second_p": second.p if second is not None else 0.0,
        "cov": f["cov"],
        "min_key": f["min_key"],
        "cov_ctx": f["cov_ctx"],
        "key_min": f["key_min"],
        "unmatched": f["unmatched"],
        "unknown": unknown_share,
        "ent_min": f["ent_min"],
        "type_bound": f["type_bound"] if kind_asked else 1.0,
        "local_cov": f["local_cov"] if kind_asked else f["cov"],
        "weak": weak_share,
        "ent_unknown_share": unknown_names,
        "ent": f["ent"],
        "ent_doc": f["ent_doc"],
        "ent_unknown": float(unknown),
        "type_asked": 1.0 if kind_asked else 0.0,
        "type_fit": f["type_fit"],
        "cos0": f["cos0"],
        "cos1": f["cos1"],
        "own_words": math.log1p(own_words),
        "has_context": 1.0 if any(not w.own for w in query.words) else 0.0,
        "domain0": domain[0],
        "domain1": domain[1],
    }
    return np.array([values[k] for k in ABSTAIN_FEATURES], dtype=float)
