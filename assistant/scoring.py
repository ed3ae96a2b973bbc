"""Sentence scoring, the third stage: how likely each candidate sentence answers the question.

Every sentence of the candidate passages gets a feature vector (both encoders' cosines, how
much of the question's meaning its words hold, whether it holds a thing of the asked type,
where its passage ranked, how many latent terms of e5's sparse head it shares, ...). A logistic model fitted on the dev split (``summit fit``, see
fitting.py) turns the features into a probability; its weights live in ``weights.json`` next to
this file. Nothing here is hand-weighted.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

WEIGHTS_FILE = Path(__file__).with_name("weights.json")
# Fitted with latent terms off (SUMMIT_LATENT_TERMS=false summit fit): the faster configuration
# gets a model that never learnt to lean on them, not the default one with them held neutral.
WEIGHTS_NO_LATENT_FILE = Path(__file__).with_name("weights-no-latent.json")


def default_weights_file(latent_terms: bool = True) -> Path:
    """The shipped weights for a configuration: with latent terms, or without them."""
    return WEIGHTS_FILE if latent_terms else WEIGHTS_NO_LATENT_FILE

SENTENCE_FEATURES: tuple[str, ...] = (
    "cos0", "cos1", "cos0_rel", "cos1_rel", "ctx0", "ctx1", "prev_cos0", "prev_cos1", "doc_cos1",
    "cov", "cov_rel", "cov_ctx", "cov_all", "min_key", "prev_cov", "next_cov", "doc_cov",
    "ent", "ent_doc", "ent_min", "key_min", "unmatched",
    "type_fit", "type_missing", "type_bound", "local_cov", "why_marker",
    "rrf", "chunk_rank", "sent_rank",
    "anaphor", "source", "foreign", "prev_foreign", "prev_doc", "prev_near",
    "latent", "latent_rel", "earlier", "prev_same",
)


@dataclass
class LogisticModel:
    """w·((x - mean) / scale) + b -> sigmoid; the same shape for every fitted model here."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float = 0.5
    meta: dict = field(default_factory=dict)

    def logit(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean) / self.scale) @ self.coef + self.intercept

    def proba(self, X: np.ndarray) -> np.ndarray:
        z = np.clip(self.logit(X), -30, 30)
        return 1.0 / (1.0 + np.exp(-z))

    def to_json(self) -> dict:
        return {"features": list(self.features), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": float(self.intercept), "threshold": float(self.threshold),
                "meta": self.meta}

    @classmethod
    def from_json(cls, d: dict, expected: tuple[str, ...]) -> "LogisticModel":
        feats = tuple(d["features"])
        if feats != expected:
            raise ValueError(f"weights were fitted on features {feats}, the code computes {expected}; run `summit fit`")
        return cls(feats, np.asarray(d["mean"], float), np.asarray(d["scale"], float), np.asarray(d["coef"], float),
                   float(d["intercept"]), float(d.get("threshold", 0.5)), d.get("meta", {}))

    @classmethod
    def neutral(cls, features: tuple[str, ...], weights: dict[str, float], threshold: float = 0.5) -> "LogisticModel":
        """A model with the given raw weights: used only before the first fit (`summit fit`)."""
        n = len(features)
        coef = np.array([weights.get(f, 0.0) for f in features], float)
        return cls(features, np.zeros(n), np.ones(n), coef, 0.0, threshold, {"fitted": False})


@dataclass
class Weights:
    sentence: LogisticModel
    abstain: LogisticModel
    settings: dict = field(default_factory=dict)  # fitted constants (context weight, conflict margin, ...)
    # the dev questions' mean vector per encoder id and language (centring.py): {id: {lang: [..]}}
    query_means: dict = field(default_factory=dict)


def load_weights(path: Path | None = None) -> Weights:
    """The fitted models; before any fit, a neutral stand-in so that the code runs (and says so)."""
    from .abstention import ABSTAIN_FEATURES

    path = Path(path or WEIGHTS_FILE)
    if path.is_file():
        d = json.loads(path.read_text(encoding="utf-8"))
        try:
            return Weights(LogisticModel.from_json(d["sentence"], SENTENCE_FEATURES),
                           LogisticModel.from_json(d["abstain"], ABSTAIN_FEATURES), d.get("settings", {}),
                           d.get("query_means", {}))
        except (ValueError, KeyError) as exc:
            import logging

            logging.getLogger("summit").warning("%s: %s; using unfitted weights", path, exc)
    sentence = LogisticModel.neutral(SENTENCE_FEATURES, {"cos0": 2.0, "cos1": 2.0, "cov": 2.0, "type_fit": 1.0})
    abstain = LogisticModel.neutral(ABSTAIN_FEATURES, {"best_p": 4.0}, threshold=0.5)
    abstain.intercept = -2.0
    return Weights(sentence, abstain, {})


def save_weights(weights: Weights, path: Path | None = None) -> Path:
    path = Path(path or WEIGHTS_FILE)
    payload = {"_note": "Fitted by `summit fit` on the dev split (eval/README.md); do not edit by hand.",
               "sentence": weights.sentence.to_json(), "abstain": weights.abstain.to_json(), "settings": weights.settings,
               "query_means": {eid: {lang: [round(float(x), 6) for x in v] for lang, v in by_lang.items()}
                               for eid, by_lang in weights.query_means.items()}}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def coverage(words, matches: np.ndarray, *, own_only: bool = True) -> float:
    """Share of the question's meaning (idf-weighted words) that the matches hold."""
    total = got = 0.0
    for w, m in zip(words, matches):
        if own_only and not w.own:
            continue
        imp = w.importance * (w.weight if not own_only else 1.0)
        total += imp
        got += imp * float(m)
    return got / total if total else 0.0


def min_key_match(words, matches: np.ndarray) -> float:
    """The weakest match among the question's own important words (idf above the median of the
    question's words): a sentence that misses the attribute asked about ("salary", "city") scores
    low whatever else it holds."""
    own = [(w.importance, float(m)) for w, m in zip(words, matches) if w.own]
    if not own:
        return 0.0
    imps = sorted(i for i, _ in own)
    median = imps[len(imps) // 2] if len(imps) % 2 else 0.5 * (imps[len(imps) // 2 - 1] + imps[len(imps) // 2])
    key = [m for i, m in own if i >= median]
    return min(key) if key else 0.0


def unmatched_share(words, matches: np.ndarray, below: float = 0.3) -> float:
    """Share of the question's own meaning (idf-weighted) that the matches leave out."""
    total = miss = 0.0
    for w, m in zip(words, matches):
        if not w.own:
            continue
        total += w.importance
        if float(m) < below:
            miss += w.importance
    return miss / total if total else 0.0


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, x))))
