"""Counting tokens offline, approximately, with no tokenizer to download.

LangChain's default count loads GPT-2's tokenizer from `transformers`, which is
not installed (and would download a model), so `get_num_tokens` and
`trim_messages(token_counter=model)` failed. A server may run any model with
any tokenizer anyway, so an exact count is not available to a client; this
module gives an estimate that needs nothing: the text is split the way BPE
tokenizers pre-split it (words with their leading space, runs of up to three
digits, runs of punctuation, whitespace), and each piece is counted by its
length, with shorter tokens for non-Latin scripts. Messages add OpenAI's
documented overhead per message and per reply.

Measured against `cl100k_base` (gpt-3.5-turbo's tokenizer), the count of a
whole text was within 5% on English prose, Markdown, Python, JSON and
Russian (`benchmarks/token_count_accuracy.py`; the README's "Token counting"
has the figures). Pass `custom_get_token_ids=` to the model for an exact
count with your tokenizer.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

# One piece per match, the way BPE pre-tokenizers split text: a contraction,
# a word with one leading non-letter (usually its space), up to three digits,
# a punctuation run with its leading space, or whitespace.
_PIECES = re.compile(
    r"'(?:[sdmt]|ll|ve|re)"
    r"|[^\r\n\w]?[^\W\d_]+"
    r"|\d{1,3}"
    r"| ?[^\s\w]+[\r\n]*"
    r"|\s*[\r\n]+"
    r"|\s+(?!\S)"
    r"|\s+",
    re.IGNORECASE,
)
_ASCII = re.compile(r"[\x00-\x7f]+")

# How a piece's expected token count grows with its length past the point
# where one token usually covers it; fitted on cl100k_base (see the module doc).
_WORD_ONE_TOKEN, _WORD_PER_CHAR = 7, 0.15
_PUNCTUATION_ONE_TOKEN, _PUNCTUATION_PER_CHAR = 2, 0.12
_CYRILLIC_ONE_TOKEN, _CYRILLIC_PER_CHAR = 3, 0.35

# OpenAI's published accounting for chat models (gpt-3.5-turbo and later).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_PER_REPLY = 3


def estimate_tokens(text: str) -> int:
    """Estimate how many tokens a BPE tokenizer makes of the text."""
    return round(sum(_piece_tokens(piece) for piece in _PIECES.findall(text)))


def _piece_tokens(piece: str) -> float:
    """The expected number of tokens of one piece (a fraction, on average)."""
    if piece.isspace():
        return 1.0
    length = len(piece)
    if _ASCII.fullmatch(piece):
        if piece.strip().isalnum():
            return 1.0 + max(0, length - _WORD_ONE_TOKEN) * _WORD_PER_CHAR
        return 1.0 + max(0, length - _PUNCTUATION_ONE_TOKEN) * _PUNCTUATION_PER_CHAR
    # Scripts without their own short tokens (CJK and most others) take
    # about one token per character; Cyrillic and Greek words split less.
    wide = sum(1 for char in piece if not char.isascii() and not _is_cyrillic(char))
    if wide:
        return max(1.0, wide + (length - wide) / 3)
    return 1.0 + max(0, length - _CYRILLIC_ONE_TOKEN) * _CYRILLIC_PER_CHAR


def _is_cyrillic(char: str) -> bool:
    return "\u0370" <= char <= "\u052f"  # Greek and Cyrillic


def pseudo_token_ids(text: str) -> list[int]:
    """Ids standing for the estimated tokens: as many as `estimate_tokens` says.

    Each id is a checksum of the piece it belongs to, so equal pieces get
    equal ids in every process; they mean nothing to any real model.
    """
    ids: list[int] = []
    expected = 0.0
    for piece in _PIECES.findall(text):
        expected += _piece_tokens(piece)
        checksum = zlib.crc32(piece.encode())
        ids.extend(checksum + offset for offset in range(round(expected) - len(ids)))
    return ids


def count_message_tokens(
    messages: Iterable[BaseMessage],
    count_text: Callable[[str], int],
    tools: Sequence[Any] | None = None,
) -> int:
    """Count a conversation as a chat-completions request: text plus overhead.

    Each message costs its text (content, name, tool calls and their
    arguments) plus `TOKENS_PER_MESSAGE`; the reply is primed with
    `TOKENS_PER_REPLY`; tools count as the JSON of their specs. Non-text
    content (images, audio, files) is not counted.
    """
    total = TOKENS_PER_REPLY
    for message in messages:
        total += TOKENS_PER_MESSAGE + count_text(_message_text(message))
        if message.name:
            total += TOKENS_PER_NAME + count_text(message.name)
    if tools:
        from langchain_dfehub._tools import tools_to_wire

        total += count_text(json.dumps(tools_to_wire(tools), ensure_ascii=False))
    return total


def _message_text(message: BaseMessage) -> str:
    parts = [message.type, message.text]
    if isinstance(message, AIMessage):
        for call in message.tool_calls:
            parts += [call["name"], json.dumps(call["args"], ensure_ascii=False)]
    if isinstance(message, ToolMessage):
        parts.append(message.tool_call_id)
    return "\n".join(part for part in parts if part)
