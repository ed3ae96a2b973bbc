"""The articles: list, read, add (upload) and delete."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Request
from fastapi import Response as FastAPIResponse
from starlette.exceptions import HTTPException

from assistant.errors import InvalidInputError

from ..deps import AssistantDep, StateDep, change_documents, current_assistant, require_admin
from ..errors import ERRORS
from ..middleware import UPLOAD_PATH, BodyTooLargeError
from ..schemas import DocumentAdded, DocumentDeleted, DocumentFull, DocumentMeta, ErrorResponse

log = logging.getLogger("summit.api")

UPLOAD_FIELDS = ("id", "title", "source", "published", "url", "language", "replace")

router = APIRouter(tags=["documents"])


@router.get("/api/documents", response_model=list[DocumentMeta], responses={503: ERRORS[503]})
def documents(assistant: AssistantDep) -> list[dict[str, Any]]:
    """The indexed articles and their metadata."""
    return assistant.documents()


@router.get("/api/documents/{doc_id}", response_model=DocumentFull,
            responses={404: {"model": ErrorResponse, "description": "No such document"}, 503: ERRORS[503]})
def document(doc_id: str, assistant: AssistantDep) -> dict[str, Any]:
    """One article with its cleaned text: citation offsets point into ``text``."""
    doc = assistant.document(doc_id)
    if doc is None:
        raise HTTPException(404, f"no document with id {doc_id!r}; GET /api/documents lists them")
    return doc


# The multipart body, described by hand: the route reads the form itself (after the auth check).
upload_body = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {
                "file": {"type": "string", "format": "binary",
                         "description": "An HTML page, a PDF, a plain-text or a Markdown file; the type is sniffed from the content."},
                "id": {"type": "string", "description": "Document id (lower-case letters, digits, '-'); default: from the file name"},
                "title": {"type": "string", "description": "Overrides the file's own title"},
                "source": {"type": "string", "description": "Publisher; required when the file does not name it"},
                "published": {"type": "string", "description": "Publication date, e.g. 2025-02-10"},
                "url": {"type": "string", "description": "Canonical address of the article"},
                "language": {"type": "string", "enum": ["fr", "en"]},
                "replace": {"type": "string", "enum": ["true", "false"],
                            "description": "true: replace the document with the same id (a corrected version) instead of a 409"},
            }}}},
    }
}
admin_errors = {401: {"model": ErrorResponse, "description": "No bearer token"},
                403: {"model": ErrorResponse, "description": "Wrong admin token"},
                404: {"model": ErrorResponse, "description": "No admin token is configured (or no such document)"},
                409: {"model": ErrorResponse, "description": "Duplicate, or another change is running"},
                503: ERRORS[503]}


@router.post(UPLOAD_PATH, status_code=201, response_model=DocumentAdded, openapi_extra=upload_body,
             responses={**admin_errors, 413: ERRORS[413],
                        415: {"model": ErrorResponse, "description": "Not an HTML page, PDF, text or Markdown file"},
                        422: {"model": ErrorResponse, "description": "Nothing to extract, missing metadata or a bad field"}})
async def add_document(request: Request, response: FastAPIResponse, state: StateDep,
                       authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    """Add one article (multipart field ``file``) and rebuild the index with it: when this
    returns, questions are answered from it. Only the new document is embedded. Any failure
    is a 4xx and leaves the documents and the index as they were. Needs the admin token."""
    require_admin(state, authorization)
    assistant = current_assistant(request)
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise HTTPException(415, "send the file as multipart/form-data in the field 'file'")
    from assistant.ingest import Input, Overrides, add_documents

    try:
        form = await request.form(max_files=1, max_fields=len(UPLOAD_FIELDS) + 1, max_part_size=64_000)
    except BodyTooLargeError as exc:
        raise HTTPException(413, str(exc)) from None
    except Exception as exc:  # starlette's MultiPartException and parser errors: the body is malformed
        raise HTTPException(400, f"the multipart body cannot be read: {exc}") from None
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidInputError("the multipart field 'file' is missing; send the article as a file in it")
        unknown = sorted(set(form.keys()) - {"file", *UPLOAD_FIELDS})
        if unknown:
            raise InvalidInputError(f"unknown form field(s) {', '.join(unknown)}; allowed: file, {', '.join(UPLOAD_FIELDS)}")
        values: dict[str, str | None] = {}
        for name in UPLOAD_FIELDS:
            value = form.get(name)
            if value is not None and not isinstance(value, str):
                raise InvalidInputError(f"form field '{name}' must be text, not a file")
            values[name] = value.strip() if isinstance(value, str) and value.strip() else None
        try:
            raw = await upload.read()
        except BodyTooLargeError as exc:
            raise HTTPException(413, str(exc)) from None
        filename = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip() or None
    finally:
        await form.close()
    overrides = Overrides(doc_id=values["id"], title=values["title"], source=values["source"],
                          published=values["published"], url=values["url"], language=values["language"])
    if (values["replace"] or "false").lower() not in ("true", "false"):
        raise InvalidInputError("form field 'replace' must be true or false")
    replace = (values["replace"] or "").lower() == "true"
    result = await anyio.to_thread.run_sync(
        lambda: change_documents(state, lambda: add_documents(assistant, [Input(raw, filename, overrides)],
                                                              max_bytes=state.settings.max_upload_bytes, replace=replace)))
    added = result["added"][0]
    log.info("added document %s (%s) -> build %s", added["doc_id"], added["format"], assistant.index.build_id)
    response.headers["Location"] = f"/api/documents/{added['doc_id']}"
    return {**added, "build_id": assistant.index.build_id}


@router.delete("/api/documents/{doc_id}", response_model=DocumentDeleted, responses={**admin_errors, 422: ERRORS[422]})
def delete_document(doc_id: str, request: Request, state: StateDep,
                    authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    """Remove an article and its original, and rebuild the index without it. Refused (409)
    for the last document. Needs the admin token."""
    require_admin(state, authorization)
    assistant = current_assistant(request)
    from assistant.ingest import check_id
    from assistant.ingest import delete_document as delete

    check_id(doc_id, "document id")
    result = change_documents(state, lambda: delete(assistant, doc_id))
    log.info("deleted document %s -> build %s", doc_id, assistant.index.build_id)
    return {"deleted": doc_id, "files": result["files"], "build_id": assistant.index.build_id,
            "documents": assistant.index.counts()["documents"]}

