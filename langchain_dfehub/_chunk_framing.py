"""One judge of a chunked body's framing, for both transports.

`urllib3` (under `requests`) and `h11` (under `httpx`) each parse chunked
bodies their own way, and a hostile server finds where they part: urllib3
reads `+5`, ` 5`, `0x5` and `5_0` as sizes, and skips two bytes after a
chunk's data whatever they are; h11 takes a 20-digit size and waits for its
data, and a size line or trailer of any length up to its buffer's. So both
transports pass a chunked body's bytes through `ChunkFraming` as their
library reads them, before it parses them: a reply either path would refuse
is refused on both, with the same words, and neither library's leniency is
ever reached.

The rules are RFC 9112's chunked coding, strictly: a size of hex digits
(no sign, prefix or space before it), then any chunk extensions, which are
ignored; CRLF after every line and after every chunk's data; trailer fields
after the last chunk. Beyond the RFC, the limits `http.client` puts on a
reply's lines, kept on both paths: no line over 64 KiB, no trailer over
64 KiB in all, and no chunk larger than the largest body we accept, which no
server can mean in a chat reply.
"""

from __future__ import annotations

import re

from langchain_dfehub._stream_state import MAX_BODY_BYTES, MAX_HEADER_LINE

_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]+)(?:;[^\n]*)?[ \t]*")
_TRAILER_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*")
_CRLF = b"\r\n"

_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


class ChunkFraming:
    """Follows a chunked body byte by byte; says what breaks its framing.

    `feed` takes the body's bytes in order, however they are split, and
    returns what is wrong with them (once), or None. `complete` says whether
    the last chunk and its trailer have passed: a body that ends before that
    was cut, not broken.

    With `keep_unread`, `unread` holds the data of the chunk in progress
    until its closing CRLF has passed: a reader that hands a chunk over only
    once it is whole (urllib3) never hands over what came of a chunk cut
    short, which a reader that hands data over as it comes (h11) has.
    """

    __slots__ = ("_left", "_line", "_state", "_trailer_size", "problem", "unread")

    def __init__(self, *, keep_unread: bool = False) -> None:
        self._state = _SIZE
        self._line = bytearray()
        self._left = 0  # bytes of chunk data, or of its CRLF, still to come
        self._trailer_size = 0
        self.problem: str | None = None
        self.unread: bytearray | None = bytearray() if keep_unread else None

    @property
    def complete(self) -> bool:
        """Whether the whole body has passed, up to its final CRLF."""
        return self._state == _DONE

    def feed(self, data: bytes) -> str | None:
        """Check the next bytes of the body; the problem they reveal, or None."""
        if self.problem is not None or self._state == _DONE:
            return None  # judged already; what follows is not this body's
        at = 0
        while at < len(data) and self.problem is None and self._state != _DONE:
            if self._state == _DATA:
                step = min(self._left, len(data) - at)
                if self.unread is not None:
                    self.unread += data[at : at + step]
                self._left -= step
                at += step
                if not self._left:
                    self._state, self._left = _DATA_END, len(_CRLF)
            elif self._state == _DATA_END:
                step = min(self._left, len(data) - at)
                start = len(_CRLF) - self._left
                if data[at : at + step] != _CRLF[start : start + step]:
                    self.problem = "a chunk's data not followed by CRLF"
                self._left -= step
                at += step
                if not self._left:
                    self._state = _SIZE
                    if self.unread is not None:
                        self.unread.clear()  # the chunk is whole: handed over
            else:
                at = self._take_line(data, at)
        return self.problem

    def _take_line(self, data: bytes, at: int) -> int:
        """Add to the current line from `data[at:]`; where the line ends."""
        end = data.find(b"\n", at)
        stop = len(data) if end < 0 else end + 1
        self._line += data[at:stop]
        if len(self._line) > MAX_HEADER_LINE:
            kind = "chunk size" if self._state == _SIZE else "trailer"
            self.problem = f"a {kind} line longer than 64 KiB"
        elif end >= 0:
            line = bytes(self._line)
            self._line.clear()
            if not line.endswith(_CRLF):
                self.problem = "a chunk line not ended by CRLF"
            elif self._state == _SIZE:
                self._size_line(line[:-2])
            else:
                self._trailer_line(line[:-2])
        return stop

    def _size_line(self, line: bytes) -> None:
        match = _SIZE_LINE.fullmatch(line)
        if match is None:
            self.problem = "a chunk size that is not a hexadecimal number"
            return
        digits = match.group(1)
        if len(digits) > 16:  # past 64 bits; h11 refuses more than 20 digits
            self.problem = "a chunk size of more than 16 hex digits"
            return
        size = int(digits, 16)
        if size > MAX_BODY_BYTES:
            self.problem = f"a chunk larger than {MAX_BODY_BYTES // 2**20} MiB"
        elif size:
            self._state, self._left = _DATA, size
        else:
            self._state = _TRAILER

    def _trailer_line(self, line: bytes) -> None:
        if not line:
            self._state = _DONE
            return
        self._trailer_size += len(line) + len(_CRLF)
        if self._trailer_size > MAX_HEADER_LINE:
            self.problem = "a trailer longer than 64 KiB"
        elif _TRAILER_LINE.fullmatch(line) is None:
            self.problem = "a trailer line that is no header"
