"""Loading and cleaning articles: front matter, encodings, boilerplate, ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.documents import clean_text, doc_id_for, load_documents, parse_document
from assistant.errors import DocumentError
from assistant.settings import DEFAULT_BOILERPLATE_PATTERNS

from .fakes import ARTICLE_A, write_corpus

P = DEFAULT_BOILERPLATE_PATTERNS


def test_front_matter_fields_are_read(tmp_path):
    write_corpus(tmp_path)
    docs, skipped = load_documents(tmp_path, P)
    assert not skipped
    by_id = {d.doc_id: d for d in docs}
    assert set(by_id) == {"a", "b"}
    assert by_id["a"].title == "Le forum de Lyon sur la robotique" and by_id["a"].source == "Exemple"
    assert by_id["a"].published is None and by_id["a"].url is None
    assert by_id["b"].published == "2025-03-01"  # a YAML date becomes ISO text
    assert by_id["a"].language == "fr"


def test_boilerplate_footer_is_removed_in_code_not_in_the_file(tmp_path):
    write_corpus(tmp_path)
    doc = {d.doc_id: d for d in load_documents(tmp_path, P)[0]}["a"]
    assert "Bienvenue" not in doc.text and "Je crée mon compte" not in doc.text
    assert doc.text.endswith("viendra à Lyon.")
    assert "Je crée mon compte" in (tmp_path / "a.md").read_text(encoding="utf-8")
    assert "Je crée mon compte" in doc.removed_lines


def test_call_to_action_tail_is_removed_by_heuristic_without_a_pattern():
    body = "Un article sérieux sur le sommet.\nIl compte deux phrases.\nAbonnez-vous à notre lettre\nS'inscrire"
    text, removed = clean_text(body, patterns=[])
    assert text == "Un article sérieux sur le sommet.\nIl compte deux phrases."
    assert removed == ["Abonnez-vous à notre lettre", "S'inscrire"]


def test_short_last_line_without_chrome_is_kept():
    body = "Première phrase du texte.\nFin"
    assert clean_text(body, patterns=P)[0] == body


def test_real_rtl_footer_is_never_in_the_cleaned_text():
    docs, _ = load_documents(Path(__file__).parents[1] / "documents", P)
    for doc in docs:
        for marker in ("Bienvenue sur RTL", "Je crée mon compte", "notifications", "Sources:"):
            assert marker not in doc.text, (doc.doc_id, marker)
    rtl = next(d for d in docs if d.source == "RTL")
    assert rtl.text.endswith("au Grand Palais à Paris.")


@pytest.mark.parametrize(
    "raw, problem",
    [
        (b"no front matter here", "no YAML front matter"),
        (b"---\ntitle: [unclosed\n---\nBody.", "malformed YAML"),
        (b"---\n- a\n- b\n---\nBody.", "must be a mapping"),
        (b"---\nsource: X\n---\nBody.", "needs a 'title'"),
        (b"---\ntitle: T\n---\nBody.", "needs a 'source'"),
        (b"---\ntitle: T\nsource: S\n---\n   \n", "empty body"),
        (b"---\ntitle: T\nsource: S\n---\nBody \xff\xfe.", "not valid UTF-8"),
        (b"---\ntitle: T\nsource: S\n---\nBody\x00.", "binary"),
        (b"---\ntitle: !!python/object/apply:os.system ['echo hi']\nsource: S\n---\nBody.", "malformed YAML"),
        (b"---\ntitle: T\nsource: {a: 1}\n---\nBody.", "must be text"),
    ],
)
def test_bad_documents_name_the_file_and_the_problem(tmp_path, raw, problem):
    path = tmp_path / "bad.md"
    with pytest.raises(DocumentError) as info:
        parse_document(path, raw, P)
    assert str(path) in str(info.value)
    assert problem in str(info.value)


def test_duplicate_ids_are_an_error_naming_both_files(tmp_path):
    write_corpus(tmp_path, {"a.md": ARTICLE_A, "b.md": ARTICLE_A.replace("---\ntitle", "---\nid: a\ntitle", 1)})
    with pytest.raises(DocumentError, match="same id 'a'"):
        load_documents(tmp_path, P)


def test_skip_invalid_keeps_the_good_ones_and_lists_the_bad(tmp_path):
    write_corpus(tmp_path, {"a.md": ARTICLE_A, "broken.md": "no front matter"})
    docs, skipped = load_documents(tmp_path, P, skip_invalid=True)
    assert [d.doc_id for d in docs] == ["a"]
    assert len(skipped) == 1 and "broken.md" in str(skipped[0])


def test_symlink_outside_the_folder_is_rejected(tmp_path):
    outside = tmp_path / "outside.md"
    outside.write_text(ARTICLE_A, encoding="utf-8")
    docs_dir = tmp_path / "docs"
    docs_dir.mkdir()
    (docs_dir / "link.md").symlink_to(outside)
    with pytest.raises(DocumentError, match="outside the documents folder"):
        load_documents(docs_dir, P)


def test_missing_folder_and_empty_folder(tmp_path):
    with pytest.raises(DocumentError, match="not a folder"):
        load_documents(tmp_path / "nope", P)
    with pytest.raises(DocumentError, match="no usable"):
        load_documents(tmp_path, P)


def test_doc_ids_are_ascii_slugs():
    assert doc_id_for(Path("Élysée & Co — 2025.md")) == "elysee-co-2025"
