"""Chunked framing keeps what a reader of whole chunks has not handed over yet."""

from __future__ import annotations

import pytest

from langchain_dfehub._chunk_framing import ChunkFraming

BODY = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"


@pytest.mark.parametrize("piece", [1, 3, len(BODY)])
def test_the_unread_data_is_the_chunk_in_progress_until_its_crlf(piece: int) -> None:
    framing = ChunkFraming(keep_unread=True)
    seen: list[bytes] = []
    for at in range(0, len(BODY), piece):
        assert framing.feed(BODY[at : at + piece]) is None
        assert framing.unread is not None
        seen.append(bytes(framing.unread))
    assert framing.complete
    assert framing.unread == b""
    # Fed a byte at a time, the unread data grows through a chunk's data and
    # is given up once its CRLF has passed.
    if piece == 1:
        assert b"hell" in seen
        assert b" wor" in seen
        assert b"hello w" not in b"".join(seen)


def test_a_cut_leaves_the_arrived_part_of_the_chunk() -> None:
    framing = ChunkFraming(keep_unread=True)
    assert framing.feed(b"5\r\nhello\r\n10\r\ndata: [DO") is None
    assert framing.unread == b"data: [DO"
    assert not framing.complete


def test_without_keep_unread_nothing_is_kept() -> None:
    framing = ChunkFraming()
    assert framing.feed(b"5\r\nhel") is None
    assert framing.unread is None
