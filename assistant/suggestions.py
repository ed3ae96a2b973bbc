"""Suggested questions for the widget: the configured ones that the current index answers.

Each configured question is asked once per index build (when the build is installed, or on the
first request after it); only those answered are offered, with the language the assistant
detected, so a new user never starts on "I could not find the answer".
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from .errors import SummitError

log = logging.getLogger("summit.suggestions")


class Suggestions:
    def __init__(self, questions: list[str]):
        self.questions = [q for q in dict.fromkeys(q.strip() for q in questions if isinstance(q, str)) if q]
        self._lock = threading.Lock()
        self._build: str | None = None
        self._answered: list[dict] = []

    def for_index(self, assistant: Any, lock: Any = None) -> dict:
        """{"build_id": ..., "questions": [{"question", "language"}]} for the assistant's
        current build, computing it once per build. ``lock`` is held around each question
        (the API's one-request-at-a-time lock)."""
        index = assistant.index
        build = index.build_id if index is not None else None
        with self._lock:
            if build is not None and build == self._build:
                return {"build_id": build, "questions": list(self._answered)}
            answered, unanswered = [], []
            for q in self.questions:
                try:
                    if lock is not None:
                        with lock:
                            answer = assistant.ask(q, k=1)
                    else:
                        answer = assistant.ask(q, k=1)
                except SummitError as exc:
                    log.warning("suggested question %r cannot be asked: %s", q, exc)
                    continue
                (answered if answer.found else unanswered).append({"question": q, "language": answer.language})
            if unanswered:
                log.info("not suggesting %d question(s) the index does not answer: %s", len(unanswered),
                         "; ".join(u["question"] for u in unanswered))
            self._build, self._answered = build, answered
            return {"build_id": build, "questions": list(answered)}
