"""Abstention, the last stage: answer, or say plainly that the sources do not cover it.

A near-miss question names things the corpus knows ("Anne Bouverot") and asks for an attribute
it does not give ("her salary"). So the decision looks at the best evidence through the
question's key terms, not only at its overall score: is every proper name of the question
matched, is the weakest of its important words matched, is a thing of the asked type there.
A logistic model fitted on the dev split (fitting.py) combines these; its threshold is chosen
there for precision.
"""

from __future__ import annotations

import math

import numpy as np

ABSTAIN_FEATURES: tuple[str, ...] = (
    "best_p", "best_logit", "second_p",
    "cov", "min_key", "cov_ctx", "key_min", "unmatched", "unknown",
    "ent", "ent_doc", "ent_unknown", "ent_min",
    "type_asked", "type_fit", "type_bound",
    "cos0", "cos1",
    "own_words", "has_context",
)
ENTITY_KNOWN_STRENGTH = 0.4


def features(query, best, second, kind_asked: bool) -> np.ndarray:
    """The abstention features of a question given its best and second scored sentences."""
    f = best.features
    own_entities = [w for w in query.words if w.own and w.entity]
    unknown = sum(1 for w in own_entities if w.strength < ENTITY_KNOWN_STRENGTH)
    own_words = sum(1 for w in query.words if w.own)
    own = [w for w in query.words if w.own]
    total = sum(w.importance for w in own)
    unknown_share = sum(w.importance for w in own if not w.terms) / total if total else 0.0
    values = {
        "best_p": best.p,
        "best_logit": best.logit,
        "second_p": second.p if second is not None else 0.0,
        "cov": f["cov"],
        "min_key": f["min_key"],
        "cov_ctx": f["cov_ctx"],
        "key_min": f["key_min"],
        "unmatched": f["unmatched"],
        "unknown": unknown_share,
        "ent_min": f["ent_min"],
        "type_bound": f["type_bound"] if kind_asked else 1.0,
        "ent": f["ent"],
        "ent_doc": f["ent_doc"],
        "ent_unknown": float(unknown),
        "type_asked": 1.0 if kind_asked else 0.0,
        "type_fit": f["type_fit"],
        "cos0": f["cos0"],
        "cos1": f["cos1"],
        "own_words": math.log1p(own_words),
        "has_context": 1.0 if any(not w.own for w in query.words) else 0.0,
    }
    return np.array([values[k] for k in ABSTAIN_FEATURES], dtype=float)
