"""A JSON list of objects read from a stream in bounded batches.

Exports keep each listening history as one JSON list of play objects, up to the
import limits in size. Parsing a whole file at once holds its text and every row as
a Python object (several times the file). :func:`json_list` reads about 4 MiB of text
at a time, cuts it just after a play's closing brace outside any string, and parses
each batch with orjson, so memory holds one batch and the table built so far
(docs/formats.md, "Memory"). Errors name the file, line and column as a whole-file
parse would, never a value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

import orjson

from tunetrust.errors import ExportError

_WINDOW = 4 * 1024 * 1024  # text parsed at once: a few thousand plays
_MAX_WINDOW = 64 * 1024 * 1024  # no play of any export comes near it
_WS = re.compile(rb"[ \t\r\n]*")
_BOM = b"\xef\xbb\xbf"
_VALUE_STARTS = frozenset(bytes([c]) for c in b'{["-0123456789tfn')


def json_list(
    name: str, stream: IO[bytes], window: int = _WINDOW
) -> Iterator[list[dict[str, Any]]]:
    """The objects of the JSON list in ``stream``, in batches of about ``window`` bytes.

    Memory holds one window of text and its objects, never the whole file: each batch
    is cut after an object's closing brace (found outside strings by counting
    unescaped quotes, so a ``}`` inside a title never cuts) and parsed with orjson.
    Errors are those of parsing the whole file at once: the line and column where the
    JSON stops making sense, text that is not UTF-8, a top level that is not a list,
    or the row that is not an object (numbered from 1 across batches). A UTF-8
    byte-order mark is accepted.
    """
    return _JsonList(name, stream, window).batches()


def _quotes(buf: bytes, start: int, end: int) -> int:
    """Unescaped double quotes in ``buf[start:end]``, which must not start inside a
    run of backslashes (it starts at a brace)."""
    if buf.find(b"\\", start, end) < 0:
        return buf.count(b'"', start, end)
    seg = buf[start:end].replace(b"\\\\", b"")  # escaped backslashes, left to right
    return seg.count(b'"') - seg.count(b'\\"')


def _chars(seg: bytes) -> int:
    """Characters in UTF-8 text (orjson counts columns in characters)."""
    return len(seg) if seg.isascii() else len(seg.decode("utf-8", "replace"))


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


class _JsonList:
    """The reading state: a buffer of text not yet parsed and where it lies in the file."""

    def __init__(self, name: str, stream: IO[bytes], window: int) -> None:
        self.name, self.stream, self.window = name, stream, window
        self.buf = b""
        self.pos = 0  # start of what is not consumed yet
        self.eof = False
        self.line = 1  # line and column (characters) of buf[pos], for error messages
        self.col = 1
        self.rows = 0  # rows handed out so far
        self.comma = (1, 1)  # where the last comma between rows was

    # -- the buffer --------------------------------------------------------------------

    def _fill(self, n: int) -> None:
        """At least ``n`` bytes after ``pos`` in the buffer, unless the file ends first."""
        have = len(self.buf) - self.pos
        if have >= n or self.eof:
            return
        parts = [self.buf[self.pos :]]
        while have < n:
            chunk = self.stream.read(n - have)
            if not chunk:
                self.eof = True
                break
            parts.append(chunk)
            have += len(chunk)
        self.buf, self.pos = b"".join(parts), 0

    def _advance(self, to: int) -> None:
        """Consume ``buf[pos:to]``, keeping count of lines and columns."""
        nl = self.buf.count(b"\n", self.pos, to)
        if nl:
            last = self.buf.rfind(b"\n", self.pos, to)
            self.line += nl
            self.col = 1 + _chars(self.buf[last + 1 : to])
        else:
            self.col += _chars(self.buf[self.pos : to])
        self.pos = to

    def _skip_ws(self) -> bytes:
        """Skip whitespace; the next byte, or ``b""`` at the end of the file."""
        while True:
            self._advance(_WS.match(self.buf, self.pos).end())  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos : self.pos + 1]
            if self.eof:
                return b""
            self._fill(self.window)

    # -- errors ------------------------------------------------------------------------

    def _invalid(self, at: int) -> ExportError:
        """Invalid JSON at byte ``buf[at]`` (``at >= pos``)."""
        seg = self.buf[self.pos : at]
        nl = seg.count(b"\n")
        line = self.line + nl
        col = 1 + _chars(seg[seg.rfind(b"\n") + 1 :]) if nl else self.col + _chars(seg)
        return self._invalid_at(line, col)

    def _invalid_at(self, line: int, col: int) -> ExportError:
        return ExportError(
            self.name,
            f"is not valid JSON (stops making sense at line {line}, column {col}; truncated?)",
            hint="download the export again",
        )

    def _decode_error(self, text: bytes, exc: orjson.JSONDecodeError, shift: int) -> ExportError:
        """The error of parsing ``text`` (which starts at ``pos``) as the whole file's."""
        if _not_utf8(text):
            return ExportError(
                self.name,
                "is not UTF-8 text",
                hint="it was changed after download; download again",
            )
        chars = text.decode("utf-8")[: max(exc.pos - shift, 0)]
        return self._invalid(self.pos + len(chars.encode("utf-8")))

    def _objects(self, doc: list[Any]) -> list[dict[str, Any]]:
        for i, row in enumerate(doc):
            if not isinstance(row, dict):
                raise ExportError(
                    self.name, "expected an object for each play", row=self.rows + i + 1
                )
        self.rows += len(doc)
        return doc

    # -- the list ----------------------------------------------------------------------

    def batches(self) -> Iterator[list[dict[str, Any]]]:
        self._fill(max(self.window, len(_BOM)))
        if self.buf.startswith(_BOM):
            self.pos = len(_BOM)
        first = self._skip_ws()
        if not first:
            raise ExportError(self.name, "the file is empty", hint="download the export again")
        if first not in _VALUE_STARTS:
            raise self._invalid(self.pos)
        if first != b"[":
            raise self._not_a_list()
        self._advance(self.pos + 1)
        if self._skip_ws() == b"]":
            self._advance(self.pos + 1)
            self._end()
            return
        while True:
            self._object_next()
            rows, more = self._batch()
            yield rows
            if not more:
                return

    def _not_a_list(self) -> ExportError:
        """A top level that is not a list: invalid JSON or another value, as a whole parse
        would say for a small file; a large one is refused without reading it all."""
        self._fill(self.window)
        if not self.eof or len(self.buf) - self.pos > self.window:
            return ExportError(
                self.name, "expected a JSON list of plays", hint="is this the right file?"
            )
        text = self.buf[self.pos :]
        try:
            orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            return self._decode_error(text, exc, 0)
        return ExportError(
            self.name, "expected a JSON list of plays", hint="is this the right file?"
        )

    def _object_next(self) -> None:
        """The next element must be an object."""
        nxt = self._skip_ws()
        if not nxt:
            raise self._invalid(self.pos)  # truncated after a comma or the opening bracket
        if nxt == b"]" and self.rows:
            raise self._invalid_at(*self.comma)  # a comma before the closing bracket
        if nxt not in _VALUE_STARTS:
            raise self._invalid(self.pos)
        if nxt != b"{":
            raise ExportError(self.name, "expected an object for each play", row=self.rows + 1)

    def _end(self) -> None:
        """Nothing but whitespace may follow the closing bracket."""
        if self._skip_ws():
            raise self._invalid(self.pos)

    def _batch(self) -> tuple[list[dict[str, Any]], bool]:
        """The rows of the next window (``pos`` is at an object) and whether more follow."""
        window = self.window
        while True:
            self._fill(window)
            if self.eof and len(self.buf) - self.pos <= window:
                return self._rest(), False
            end = self.pos + window
            for tried, cut in enumerate(self._closes(self.pos, end)):
                if tried == 16:
                    break
                rows = self._piece(cut)
                if rows is not None:
                    return rows, self._separator()
            if window >= _MAX_WINDOW:
                raise ExportError(
                    self.name,
                    f"a play is larger than {_MAX_WINDOW:,} bytes or nested too deeply",
                    row=self.rows + 1,
                    hint="this is not a listening history as the service writes it",
                )
            window *= 2  # rows nested in ways no export is, or a very long row

    def _closes(self, start: int, end: int) -> Iterator[int]:
        """Positions just after each ``}`` outside strings in ``buf[start:end]``, last first.

        ``start`` is outside any string; the string state at each brace follows from the
        parity of unescaped quotes, counted once over the window in all.
        """
        buf = self.buf
        inside = _quotes(buf, start, end) % 2 == 1
        hi = end
        while (k := buf.rfind(b"}", start, hi)) >= 0:
            if _quotes(buf, k, hi) % 2:
                inside = not inside
            hi = k
            if not inside:
                yield k + 1

    def _piece(self, cut: int) -> list[dict[str, Any]] | None:
        """The rows in ``buf[pos:cut]``, or ``None`` when the cut falls inside a row."""
        text = self.buf[self.pos : cut]
        try:
            doc = orjson.loads(b"[" + text + b"]")
        except orjson.JSONDecodeError as exc:
            if not _not_utf8(text) and exc.pos >= _chars(text) + 1:
                return None  # the closing bracket added here came too early
            raise self._decode_error(text, exc, 1) from None
        rows = self._objects(doc)
        self._advance(cut)
        return rows

    def _rest(self) -> list[dict[str, Any]]:
        """The rows of the rest of the file, closing bracket included."""
        text = self.buf[self.pos :]
        try:
            doc = orjson.loads(b"[" + text)
        except orjson.JSONDecodeError as exc:
            raise self._decode_error(text, exc, 1) from None
        rows = self._objects(doc)
        self._advance(len(self.buf))
        return rows

    def _separator(self) -> bool:
        """After a row: a comma (more rows follow) or the closing bracket."""
        nxt = self._skip_ws()
        if nxt == b",":
            self.comma = (self.line, self.col)
            self._advance(self.pos + 1)
            return True
        if nxt == b"]":
            self._advance(self.pos + 1)
            self._end()
            return False
        raise self._invalid(self.pos)
