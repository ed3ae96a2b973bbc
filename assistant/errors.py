"""The few named errors the library raises. Each message says what is wrong and what to do.

api/ turns them into HTTP 4xx responses with a JSON body; the CLI into a one-line message and a
non-zero exit code.
"""

from __future__ import annotations


class SummitError(Exception):
    """Base class of every error the library raises on purpose."""

    exit_code = 1


class DocumentError(SummitError):
    """A source document cannot be used (bad front matter, encoding, empty body, duplicate id)."""

    exit_code = 3

    def __init__(self, path: object, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class IndexMissingError(SummitError):
    """There is no index where one was expected."""

    exit_code = 4


class IndexMismatchError(SummitError):
    """The index on disk was built with another model, settings or format: rebuild it."""

    exit_code = 4


class IndexCorruptError(SummitError):
    """The index files are damaged or come from different builds: rebuild it."""

    exit_code = 4


class ModelError(SummitError):
    """The configured embedding model cannot be loaded offline."""

    exit_code = 5


class InvalidInputError(SummitError, ValueError):
    """A question, history, k or mode that cannot be answered as given."""

    exit_code = 2


class StoreUnavailableError(SummitError):
    """The index store (Milvus) cannot be reached or answered with an error: retry later.

    The API answers 503 with ``Retry-After: retry_after``; the CLI exits with code 6.
    ``absent``: Milvus said the collection or alias asked for does not exist (nothing published
    yet, or a newer build dropped it), as opposed to a failure of the server."""

    exit_code = 6

    def __init__(self, message: str, retry_after: int = 5, *, absent: bool = False):
        self.retry_after = retry_after
        self.absent = absent
        super().__init__(message)


class BuildLockedError(SummitError):
    """Another build of the same index is running: this one is refused."""

    exit_code = 7


class IngestError(DocumentError):
    """A file offered to ``summit add`` / ``POST /api/documents`` cannot be added.

    ``reason`` says which kind of problem it is, so the API can pick its status code:
    ``too_large``, ``unsupported`` (type or binary), ``duplicate``, ``empty`` (nothing left after
    extraction), ``invalid`` (unreadable or incomplete), ``not_found`` (delete of an unknown id).
    """

    REASONS = frozenset({"too_large", "unsupported", "duplicate", "empty", "invalid", "not_found"})

    def __init__(self, path: object, problem: str, reason: str = "invalid"):
        assert reason in self.REASONS, reason
        self.reason = reason
        super().__init__(path, problem)
