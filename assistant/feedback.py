"""Thumbs-up/down feedback on answers: an append-only JSONL file, and its conversion into a
question file (eval/README.md format) for someone to review.

One line per vote::

    {"ts": "2025-02-11T10:02:03Z", "verdict": "down", "question": "...", "history": [],
     "answer": "...", "found": true, "language": "fr", "build_id": "...",
     "citations": [{"n": 1, "doc_id": "...", "chunk_id": "...", "title": "...", "source": "...",
                    "published": null, "url": null, "quote": "the answering sentence"}]}

Lines are only ever appended (one ``write`` of a whole line under an exclusive lock), so a
crash can at worst leave a last line without its newline, which the reader skips.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InvalidInputError, SummitError

VERDICTS = ("up", "down")
MAX_TEXT = 1000  # a question or history item (as for questions)
MAX_ANSWER = 5000
MAX_CITATIONS = 20
MAX_FIELD = 2000  # a citation's title, quote, ...
MAX_COMMENT = 1000
MAX_FILE_BYTES = 50_000_000  # a full store refuses new votes instead of filling the disk
_BUILD_ID = re.compile(r"[A-Za-z0-9._:-]{1,80}")
_CITATION_FIELDS = {"n": int, "doc_id": str, "chunk_id": str, "title": str, "source": str, "published": str,
                    "url": str, "quote": str}


class FeedbackFullError(SummitError):
    """The feedback file reached its size limit."""

    exit_code = 4


def _text(value: Any, name: str, limit: int, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise InvalidInputError(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a string")
    value = re.sub("[\ud800-\udfff]", "\ufffd", value.replace("\x00", " ")).strip()
    if required and not value:
        raise InvalidInputError(f"{name} is empty")
    if len(value) > limit:
        raise InvalidInputError(f"{name} is {len(value)} characters long; the limit is {limit}")
    return value


def validate(vote: Any) -> dict:
    """A vote as sent by the widget -> the record to store; InvalidInputError names the field."""
    if not isinstance(vote, dict):
        raise InvalidInputError("feedback must be a JSON object")
    verdict = vote.get("verdict")
    if verdict not in VERDICTS:
        raise InvalidInputError(f"verdict must be 'up' or 'down', got {verdict!r}")
    history = vote.get("history") or []
    if not isinstance(history, list) or len(history) > 20:
        raise InvalidInputError("history must be a list of at most 20 previous questions")
    found = vote.get("found", True)
    if not isinstance(found, bool):
        raise InvalidInputError("found must be true or false")
    citations = vote.get("citations") or []
    if not isinstance(citations, list) or len(citations) > MAX_CITATIONS:
        raise InvalidInputError(f"citations must be a list of at most {MAX_CITATIONS} objects")
    cleaned = []
    for i, c in enumerate(citations):
        if not isinstance(c, dict):
            raise InvalidInputError(f"citations[{i}] must be an object")
        item: dict[str, Any] = {}
        for key, kind in _CITATION_FIELDS.items():
            value = c.get(key)
            if value is None:
                continue
            if kind is int:
                if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1000:
                    raise InvalidInputError(f"citations[{i}].{key} must be a small integer")
                item[key] = value
            else:
                item[key] = _text(value, f"citations[{i}].{key}", MAX_FIELD)
        cleaned.append(item)
    build_id = vote.get("build_id")
    if build_id is not None and (not isinstance(build_id, str) or not _BUILD_ID.fullmatch(build_id)):
        raise InvalidInputError("build_id must be the build id the answer came from")
    language = vote.get("language")
    if language is not None and language not in ("fr", "en"):
        raise InvalidInputError("language must be 'fr' or 'en'")
    return {
        "verdict": verdict,
        "question": _text(vote.get("question"), "question", MAX_TEXT, required=True),
        "history": [_text(h, f"history[{i}]", MAX_TEXT, required=True) for i, h in enumerate(history)],
        "answer": _text(vote.get("answer"), "answer", MAX_ANSWER) or "",
        "found": found,
        "language": language,
        "build_id": build_id,
        "citations": cleaned,
        "comment": _text(vote.get("comment"), "comment", MAX_COMMENT),
    }


@dataclass
class FeedbackStore:
    """Appends votes to one JSONL file (created with its folder on first use)."""

    path: Path
    max_bytes: int = MAX_FILE_BYTES

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self._lock = threading.Lock()

    def append(self, vote: Any, *, build_id: str | None = None) -> dict:
        """Validate and store one vote; ``build_id`` (the server's current build) fills in a vote
        that does not say which build answered. Returns the stored record."""
        record = validate(vote)
        record["build_id"] = record["build_id"] or build_id
        record = {"ts": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), **record}
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            except OSError as exc:
                raise FeedbackFullError(f"feedback cannot be stored in {self.path}: {exc.strerror or exc}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if os.fstat(fd).st_size + len(line) > self.max_bytes:
                    raise FeedbackFullError(f"the feedback file {self.path} is full ({self.max_bytes:,} bytes); archive it")
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        return record


def read_feedback(path: Path) -> tuple[list[dict], list[int]]:
    """Every valid vote in the file, and the numbers of the lines that were not."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"feedback file {path} not found")
    try:
        content = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InvalidInputError(f"feedback file {path} cannot be read ({exc.strerror})") from None
    votes, bad = [], []
    for n, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            record = validate(row)
            record["ts"] = row.get("ts") if isinstance(row.get("ts"), str) else None
        except (ValueError, InvalidInputError):
            bad.append(n)
            continue
        votes.append(record)
    return votes, bad


def _key(question: str, history: list[str]) -> tuple:
    norm = lambda s: " ".join(s.casefold().split())  # noqa: E731
    return (norm(question), tuple(norm(h) for h in history))


def to_questions(votes: list[dict]) -> list[dict]:
    """Votes -> question-file lines, one per distinct question (with its history), in the order
    first seen.

    - only thumbs up, answered: the answer is taken as correct and the quoted sentence of the
      first citation as evidence;
    - only thumbs up, not answered: a confirmed abstention (``answerable: false``);
    - any thumbs down: ``"review": true``, no answers or evidence yet, and what the assistant said
      under ``rejected``. Such a line is not a valid question until someone fills ``answers`` /
      ``evidence`` (or sets ``answerable: false``): `summit eval` refuses it, naming the line.
    """
    groups: dict[tuple, list[dict]] = {}
    for vote in votes:
        groups.setdefault(_key(vote["question"], vote["history"]), []).append(vote)
    out = []
    for key, group in groups.items():
        last = group[-1]
        ups = sum(v["verdict"] == "up" for v in group)
        downs = len(group) - ups
        qid = "fb-" + hashlib.sha1(json.dumps(key, ensure_ascii=False).encode()).hexdigest()[:10]
        row: dict[str, Any] = {"id": qid, "question": last["question"], "answers": [], "evidence": None,
                               "answerable": True, "history": last["history"], "lang": last["language"]}
        if downs:
            row["review"] = True
            rejected = next(v for v in reversed(group) if v["verdict"] == "down")
            row["rejected"] = {"answer": rejected["answer"], "found": rejected["found"],
                               "citations": [c.get("doc_id") for c in rejected["citations"]]}
        elif last["found"]:
            row["answers"] = [last["answer"]] if last["answer"] else []
            quote = next((c.get("quote") for c in last["citations"] if c.get("quote")), None)
            row["evidence"] = quote
            if not row["answers"] and not quote:
                row["review"] = True
        else:
            row["answerable"] = False
        row["review"] = bool(row.get("review"))
        row["feedback"] = {"up": ups, "down": downs, "build_id": last["build_id"],
                           "first": group[0].get("ts"), "last": last.get("ts")}
        if row["lang"] is None:
            del row["lang"]
        out.append(row)
    return out


def export_questions(path: Path) -> tuple[list[str], dict]:
    """The JSONL lines of the question file made from a feedback file, and a summary."""
    votes, bad = read_feedback(path)
    rows = to_questions(votes)
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    summary = {"votes": len(votes), "questions": len(rows), "to_review": sum(r["review"] for r in rows),
               "bad_lines": bad}
    return lines, summary
