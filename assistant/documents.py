"""Load articles from documents/ (Markdown + YAML front matter) and clean them.

The files stay verbatim; boilerplate (site banners, sign-up prompts, notification text, credit
lines) is removed here, so every citation offset points into text we can show.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import DocumentError

DOCUMENT_SUFFIXES = (".md", ".markdown")
MAX_DOCUMENT_BYTES = 5_000_000
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
_ID_SAFE = re.compile(r"[^a-z0-9]+")
# Front matter `boilerplate: extracted` marks a document whose text an extractor already cleaned
# (HTML pages added with `summit add`): the line patterns are not applied to it again.
EXTRACTED = "extracted"

# Words that mark a call-to-action line ("Je crée mon compte", "Cliquez sur ...").
_CTA_WORDS = re.compile(
    r"\b(cliquez|cliquer|rejoignez|inscrivez|inscrire|abonnez|abonner|connectez|téléchargez|suivez-nous|partagez|"
    r"activez|autoriser|notifications?|newsletter|(?:mon|votre|un) compte|click|join|subscribe|download|follow us|"
    r"sign up|sign in|log in|share)\b",
    re.I,
)


@dataclass(frozen=True)
class Document:
    doc_id: str
    title: str
    source: str
    language: str
    text: str  # cleaned text: every offset in the index points into this
    path: str
    content_hash: str  # sha256 of the raw file bytes
    url: str | None = None
    published: str | None = None
    removed_lines: tuple[str, ...] = field(default=(), compare=False)

    def metadata(self) -> dict:
        return {
            "doc_id": self.doc_id,
            "title": self.title,
            "source": self.source,
            "url": self.url,
            "published": self.published,
            "language": self.language,
        }


def doc_id_for(path: Path) -> str:
    """A stable id from the file name: lower case ASCII, words joined by '-'."""
    folded = unicodedata.normalize("NFKD", path.stem).encode("ascii", "ignore").decode().lower()
    return _ID_SAFE.sub("-", folded).strip("-") or "document"


def _is_call_to_action(line: str) -> bool:
    words = line.split()
    if not words or len(words) > 40:
        return False
    return bool(_CTA_WORDS.search(line))


def _is_short_fragment(line: str) -> bool:
    """A short line with no sentence punctuation: a button, a banner, a menu entry."""
    return len(line.split()) <= 6 and not re.search(r"[.!?…»\"]\s*$", line)


def clean_text(body: str, patterns: list[str]) -> tuple[str, list[str]]:
    """Remove boilerplate lines; return (cleaned text, removed lines).

    Two mechanisms: configurable patterns matched against whole lines, and a heuristic for the
    trailing block of a page, where sites put their chrome: from the end, lines that are calls to
    action or short unpunctuated fragments are dropped, and a tail that starts at a pattern match
    is dropped whole as long as its lines look like chrome.
    """
    compiled = [re.compile(p, re.I) for p in patterns]
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    boiler = [any(rx.fullmatch(ln.strip()) for rx in compiled) for ln in lines]

    # Trailing chrome: walk back from the end over boilerplate, calls to action and short fragments.
    end = len(lines)
    while end > 0:
        ln = lines[end - 1].strip()
        if not ln or boiler[end - 1] or _is_call_to_action(ln) or _is_short_fragment(ln):
            end -= 1
            continue
        break
    # Only trust the heuristic when the tail held at least one pattern or CTA line.
    tail = [ln for ln in lines[end:] if ln.strip()]
    if not any(boiler[end:]) and not any(_is_call_to_action(ln) for ln in tail):
        end = len(lines)

    kept, removed = [], []
    for i, ln in enumerate(lines):
        if i >= end or boiler[i]:
            if ln.strip():
                removed.append(ln.strip())
            continue
        kept.append(ln.rstrip())
    text = "\n".join(kept).strip("\n")
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text, removed


def normalize_body(body: str) -> str:
    """Line endings to \\n, trailing spaces and runs of blank lines removed; nothing else."""
    lines = [ln.rstrip() for ln in body.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines).strip("\n"))


def _as_text(value: object, path: Path, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if isinstance(value, (str, int, float)):
        text = str(value).strip()
        return text or None
    raise DocumentError(path, f"front matter field '{name}' must be text, got {type(value).__name__}")


def parse_document(path: Path, raw: bytes, patterns: list[str]) -> Document:
    if b"\x00" in raw:
        raise DocumentError(path, "looks like a binary file (NUL bytes); documents must be UTF-8 text")
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(path, f"is not valid UTF-8 (byte {exc.start}); re-save it as UTF-8") from None
    match = _FRONT_MATTER.match(content)
    if not match:
        raise DocumentError(path, "has no YAML front matter; start the file with '---', the fields, then '---'")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 2})" if where is not None else ""
        raise DocumentError(path, f"has malformed YAML front matter{line}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(meta, dict):
        raise DocumentError(path, "front matter must be a mapping of fields (title: ..., source: ...)")
    title = _as_text(meta.get("title"), path, "title")
    source = _as_text(meta.get("source"), path, "source")
    if not title:
        raise DocumentError(path, "front matter needs a 'title'")
    if not source:
        raise DocumentError(path, "front matter needs a 'source' (the publisher)")
    body = content[match.end():]
    if not body.strip():
        raise DocumentError(path, "has an empty body; add the article text after the front matter")
    if str(meta.get("boilerplate") or "").strip().lower() == EXTRACTED:
        text, removed = normalize_body(body), []
    else:
        text, removed = clean_text(body, patterns)
    if not text.strip():
        raise DocumentError(path, "has no text left after removing boilerplate")
    return Document(
        doc_id=_as_text(meta.get("id"), path, "id") or doc_id_for(path),
        title=title,
        source=source,
        language=(_as_text(meta.get("language"), path, "language") or "fr").lower(),
        url=_as_text(meta.get("url"), path, "url"),
        published=_as_text(meta.get("published"), path, "published"),
        text=text,
        path=str(path),
        content_hash=hashlib.sha256(raw).hexdigest(),
        removed_lines=tuple(removed),
    )


def document_paths(directory: Path) -> list[Path]:
    directory = Path(directory)
    if not directory.is_dir():
        raise DocumentError(directory, "is not a folder of documents; set --documents or SUMMIT_DOCUMENTS_DIR")
    return sorted(p for p in directory.iterdir() if p.suffix.lower() in DOCUMENT_SUFFIXES and not p.name.startswith("."))


def read_document(path: Path, root: Path, patterns: list[str]) -> Document:
    resolved_root = Path(root).resolve()
    if path.is_symlink():
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):  # dangling, or a loop of links
            raise DocumentError(path, "is a broken or looping symbolic link; replace it with the article file") from None
        if not target.is_relative_to(resolved_root):
            raise DocumentError(path, "is a symbolic link pointing outside the documents folder; copy the file in instead")
    if not path.is_file():
        raise DocumentError(path, "is not a regular file")
    size = path.stat().st_size
    if size > MAX_DOCUMENT_BYTES:
        raise DocumentError(path, f"is {size:,} bytes, over the {MAX_DOCUMENT_BYTES:,}-byte limit for one article")
    return parse_document(path, path.read_bytes(), patterns)


def load_documents(
    directory: Path, patterns: list[str], *, skip_invalid: bool = False
) -> tuple[list[Document], list[DocumentError]]:
    """Load every article in ``directory``. Returns (documents, skipped errors).

    Raises the first DocumentError unless ``skip_invalid``; duplicate ids are always an error.
    """
    docs: list[Document] = []
    skipped: list[DocumentError] = []
    seen: dict[str, str] = {}
    for path in document_paths(directory):
        try:
            doc = read_document(path, directory, patterns)
            if doc.doc_id in seen:
                raise DocumentError(path, f"has the same id '{doc.doc_id}' as {seen[doc.doc_id]}; rename one of them")
        except DocumentError as err:
            if not skip_invalid:
                raise
            skipped.append(err)
            continue
        seen[doc.doc_id] = str(path)
        docs.append(doc)
    if not docs:
        raise DocumentError(directory, "holds no usable .md documents")
    return docs, skipped
