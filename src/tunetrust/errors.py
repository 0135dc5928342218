"""One exception tree for TuneTrust.

    TuneTrustError                 base; ``status`` is the HTTP status an interface maps it to
    ├── InputError (400)           the caller gave something we cannot use
    │   └── ExportError (422)      an export package is unusable; names the file (and row)
    │       └── UnknownContent     one well-formed file of unknown shape: skipped, not fatal
    ├── ForbiddenError (403)       the acting person may not do this (a member for another)
    ├── NotFoundError (404)        a member, contribution … does not exist
    ├── ConflictError (409)        the thing exists already, or the home is busy
    └── SetupError (500)           the home, key or database is missing or broken

Interfaces translate these once: the CLI prints one red line and exits 1; messages
never contain personal field values, only file names, row numbers and field names.
"""

from __future__ import annotations

from collections.abc import Sequence


class TuneTrustError(Exception):
    """Base of every error TuneTrust raises on purpose."""

    status = 500


class InputError(TuneTrustError):
    """The caller gave input we cannot use.

    ``fields``: each problem as (the field's path, what is wrong), for interfaces that
    point at fields one by one (the HTTP API's problem details); the message says it all.
    """

    status = 400

    def __init__(self, message: str = "", *, fields: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.fields = list(fields)


class ExportError(InputError):
    """An export package (or one file in it) cannot be imported.

    The message names the file and, where it applies, the row and field, and says
    what to do. It never quotes a field's value: values may be personal.
    """

    status = 422

    def __init__(
        self, file: str, problem: str, *, row: int | None = None, hint: str | None = None
    ) -> None:
        self.file = file
        self.row = row
        self.problem = problem
        self.hint = hint
        where = f"{file}, row {row}" if row is not None else file
        message = f"{where}: {problem}"
        if hint:
            message += f" — {hint}"
        super().__init__(message)


class UnknownContent(ExportError):
    """A well-formed file whose content is no listening history this version knows.

    Inside a package it is reported and skipped; it refuses an import only when no
    other file holds listens.
    """


class ForbiddenError(TuneTrustError):
    """The acting person may not do this: a member acting for another, a buyer voting."""

    status = 403


class NotFoundError(TuneTrustError):
    """A named thing does not exist."""

    status = 404


class ConflictError(TuneTrustError):
    """The thing exists already, or another process holds the home."""

    status = 409


class SetupError(TuneTrustError):
    """The cooperative home, its master key or its database is missing or broken."""

    status = 500
