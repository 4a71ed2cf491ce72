"""A reply's head, read and judged line by line as the async path's h11 does.

`http.client` (the sync path) hands a reply's head to the `email` package,
which builds a parser per reply (a noticeable part of a small call's cost)
and is lenient where h11 (the async path) is not: it took a NUL inside a value,
and took a head that the server's close cut short as complete, leaving an
empty body to be read as the answer; `http.client`'s status line reader took
a status of four digits, two spaces in a row and a NUL in the reason. This
reads the status line and the header lines itself, within
`http.client`'s limits, folds an obsolete continuation line into the line
before it as h11 does, and refuses every line h11 refuses, so that both paths
take the same heads.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Callable

from langchain_dfehub._stream_state import MAX_HEADER_LINE, MAX_HEADERS

# What h11 takes as a header line: a token, a colon, then the value between
# optional blanks. A value's characters are anything but NUL and whitespace
# (CR, LF, VT, FF, blanks), with blanks allowed only between them. Written for
# text decoded as Latin-1, where `\s` would also match two non-ASCII bytes.
_VALUE_CHAR = "[^\x00\t\n\x0b\x0c\r ]"
_FIELD = re.compile(
    r"([-!#$%&'*+.^_`|~0-9A-Za-z]+):[ \t]*"
    rf"((?:{_VALUE_CHAR}+(?:[ \t]+{_VALUE_CHAR}+)*)?)[ \t]*"
)
_BLANKS = " \t"
# What h11 takes as a status line: the version, one space, three digits, and
# a reason after one more space, of anything but NUL, CR, LF, VT and FF.
_STATUS = re.compile(r"(HTTP/[0-9]\.[0-9]) ([0-9]{3})(?: ([^\x00\n\x0b\x0c\r]*))?")


class BrokenReply(http.client.HTTPException):
    """A reply that breaks HTTP the way `head_problem` (or h11) says."""


def read_status(readline: Callable[[int], bytes]) -> tuple[str, int, str]:
    """The version, status and reason of a reply's status line, as h11 reads it.

    `LineTooLong` says it passes `http.client`'s limit, `RemoteDisconnected`
    that the connection ended before it did (no reply, or a cut one), and
    `BrokenReply` that it is no status line (never quoted: it may echo the
    request).
    """
    raw = readline(MAX_HEADER_LINE + 1)
    if len(raw) > MAX_HEADER_LINE:
        raise http.client.LineTooLong("status line")
    if not raw.endswith(b"\n"):
        raise http.client.RemoteDisconnected("reply cut short in its status line")
    line = raw[: -2 if raw.endswith(b"\r\n") else -1].decode("latin-1")
    match = _STATUS.fullmatch(line)
    if match is None:
        raise BrokenReply("a status line that is no status line")
    version, status, reason = match.groups()
    if status[0] == "0":
        raise BrokenReply("a status under 100")
    return version, int(status), reason or ""


def read_fields(readline: Callable[[int], bytes]) -> list[tuple[str, str]]:
    """The header fields of a head, read line by line up to its blank line.

    `http.client`'s own errors say that a limit is passed (a line over 64 KiB,
    more than 100 lines), `RemoteDisconnected` that the connection ended
    inside the head (a cut reply, retried like one), and `BrokenReply` that a
    line is not a header line.
    """
    lines: list[str] = []
    for _ in range(MAX_HEADERS + 1):  # the lines, then the blank one
        raw = readline(MAX_HEADER_LINE + 1)
        if len(raw) > MAX_HEADER_LINE:
            raise http.client.LineTooLong("header line")
        if not raw.endswith(b"\n"):
            raise http.client.RemoteDisconnected("reply cut short in its head")
        if raw == b"\r\n" or raw == b"\n":
            return [_field(line) for line in lines]
        line = raw[: -2 if raw.endswith(b"\r\n") else -1].decode("latin-1")
        if line[0] in _BLANKS:  # an obsolete fold: part of the line before
            if not lines:
                raise BrokenReply("a continuation line before any header")
            lines[-1] += " " + line.lstrip(_BLANKS)
        else:
            lines.append(line)
    raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")


def _field(line: str) -> tuple[str, str]:
    match = _FIELD.fullmatch(line)
    if match is None:
        raise BrokenReply("a header line that is no header")
    name, value = match.groups()
    return name, value
