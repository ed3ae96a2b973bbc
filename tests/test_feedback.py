"""Feedback store (append-only JSONL) and its conversion into a question file (issue #11), and the
suggested-questions filter, with small fakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from assistant.errors import InvalidInputError
from assistant.evaluation import parse_question
from assistant.feedback import FeedbackFullError, FeedbackStore, export_questions, read_feedback, to_questions, validate
from assistant.suggestions import Suggestions

REPO = Path(__file__).resolve().parents[1]

UP = {"verdict": "up", "question": "Qui co-préside le sommet ?", "answer": "Narendra Modi", "found": True, "language": "fr",
      "build_id": "20250210T093000Z-1a2b3c4d",
      "citations": [{"n": 1, "doc_id": "rtl", "title": "Une semaine", "source": "RTL",
                     "quote": "Le dirigeant indien Narendra Modi co-présidera l'événement."}]}
DOWN = {"verdict": "down", "question": "Combien de pays ont signé ?", "answer": "deux pays", "found": True, "language": "fr",
        "citations": [{"n": 1, "doc_id": "x", "quote": "Deux pays ont parlé."}]}
ABSTAINED = {"verdict": "up", "question": "What is the weather in Tokyo?", "answer": "I could not find the answer.",
             "found": False, "language": "en", "citations": []}


def test_votes_are_appended_one_line_each(tmp_path):
    store = FeedbackStore(tmp_path / "fb" / "feedback.jsonl")
    first = store.append(UP)
    store.append(DOWN, build_id="current-build")
    lines = (tmp_path / "fb" / "feedback.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    rows = [json.loads(line) for line in lines]
    assert rows[0]["ts"] == first["ts"] and rows[0]["verdict"] == "up" and rows[0]["build_id"] == UP["build_id"]
    assert rows[0]["citations"][0]["quote"] == UP["citations"][0]["quote"]
    assert rows[1]["build_id"] == "current-build"  # the vote did not say; the server's build fills it in
    assert set(rows[0]) == {"ts", "verdict", "question", "history", "answer", "found", "language", "build_id", "citations", "comment"}


def test_concurrent_votes_never_interleave(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.jsonl")
    vote = {**UP, "answer": "x" * 4000}
    threads = [threading.Thread(target=lambda: [store.append(vote) for _ in range(20)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    votes, bad = read_feedback(tmp_path / "feedback.jsonl")
    assert len(votes) == 80 and bad == []


@pytest.mark.parametrize(
    "vote, fragment",
    [
        ({**UP, "verdict": "meh"}, "verdict"),
        ({**UP, "question": ""}, "question is empty"),
        ({**UP, "question": "x" * 1001}, "1001 characters"),
        ({**UP, "history": "not a list"}, "history"),
        ({**UP, "citations": [{"n": True}]}, "citations[0].n"),
        ({**UP, "citations": [{}] * 21}, "at most 20"),
        ({**UP, "build_id": "../../etc"}, "build_id"),
        ({**UP, "language": "de"}, "language"),
        ({**UP, "found": "yes"}, "found"),
        ("not an object", "JSON object"),
    ],
)
def test_bad_votes_are_refused(vote, fragment, tmp_path):
    with pytest.raises(InvalidInputError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        FeedbackStore(tmp_path / "f.jsonl").append(vote)
    assert not (tmp_path / "f.jsonl").exists()


def test_a_full_store_refuses_instead_of_growing(tmp_path):
    store = FeedbackStore(tmp_path / "f.jsonl", max_bytes=1000)
    store.append(UP)
    with pytest.raises(FeedbackFullError, match="full"):
        for _ in range(10):
            store.append(UP)
    assert len((tmp_path / "f.jsonl").read_text(encoding="utf-8").splitlines()) >= 1


def test_text_is_cleaned_not_interpreted():
    record = validate({**UP, "question": "  <script>x</script>\x00 ?  ", "answer": "a\ud800b"})
    assert record["question"] == "<script>x</script>  ?" and record["answer"] == "a\ufffdb"


def test_export_makes_a_question_file_and_marks_thumbs_down_for_review(tmp_path):
    store = FeedbackStore(tmp_path / "f.jsonl")
    for vote in (UP, DOWN, ABSTAINED, {**UP, "question": "qui  CO-PRÉSIDE le sommet ?"}, {**DOWN, "verdict": "up"}):
        store.append(vote)
    with open(tmp_path / "f.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"broken": \n')  # a torn last line is skipped, not fatal
    lines, summary = export_questions(tmp_path / "f.jsonl")
    rows = [json.loads(line) for line in lines]
    assert summary == {"votes": 5, "questions": 3, "to_review": 1, "bad_lines": [6]}
    up, down, abstained = rows
    assert up["answers"] == ["Narendra Modi"] and up["evidence"] == UP["citations"][0]["quote"] and up["review"] is False
    assert up["feedback"]["up"] == 2 and up["lang"] == "fr" and up["id"].startswith("fb-")
    assert down["review"] is True and down["answers"] == [] and down["rejected"]["answer"] == "deux pays"
    assert down["feedback"] == {**down["feedback"], "up": 1, "down": 1}
    assert abstained["answerable"] is False and abstained["review"] is False
    # reviewed lines are valid question lines; a line still to review is refused by the loader, naming why
    assert parse_question(up, "x").answers == ["Narendra Modi"]
    assert parse_question(abstained, "x").answerable is False
    with pytest.raises(ValueError, match="needs 'answers' or 'evidence'"):
        parse_question(down, "x")
    assert len({r["id"] for r in rows}) == 3
    assert to_questions([]) == []


@pytest.mark.slow  # the `summit` command in a process
def test_eval_from_feedback_on_the_command_line(tmp_path):
    store = FeedbackStore(tmp_path / "f.jsonl")
    store.append(UP)
    store.append(DOWN)
    run = subprocess.run([sys.executable, "-m", "assistant", "eval", "--from-feedback", str(tmp_path / "f.jsonl")],
                         cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["review"] for r in rows] == [False, True]
    assert "2 questions from 2 votes, 1 marked" in run.stderr
    missing = subprocess.run([sys.executable, "-m", "assistant", "eval", "--from-feedback", str(tmp_path / "nope.jsonl")],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "not found" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1


class FakeAssistant:
    """Answers the questions it knows; counts how often it is asked."""

    def __init__(self, answered: dict[str, str]):
        self.answered, self.asked = answered, 0
        self.index = SimpleNamespace(build_id="b1")

    def ask(self, question, k=None):
        self.asked += 1
        lang = "en" if question.startswith(("Who", "Where")) else "fr"
        return SimpleNamespace(found=question in self.answered, language=lang)


def test_suggestions_keep_only_answered_questions_once_per_build():
    fake = FakeAssistant({"Qui vient ?": "x", "Who comes?": "y"})
    s = Suggestions(["Qui vient ?", "Pourquoi la pluie ?", "Who comes?", "  ", "Qui vient ?"])
    result = s.for_index(fake, threading.Lock())
    assert result == {"build_id": "b1", "questions": [{"question": "Qui vient ?", "language": "fr"},
                                                      {"question": "Who comes?", "language": "en"}]}
    s.for_index(fake)
    assert fake.asked == 3  # cached for the build
    fake.index = SimpleNamespace(build_id="b2")
    fake.answered = {}
    assert s.for_index(fake)["questions"] == [] and fake.asked == 6
