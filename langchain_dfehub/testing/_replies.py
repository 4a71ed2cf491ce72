"""The reply rules: what the emulator answers, decided from the request alone.

The emulator stands in for a protocol, not for a language model. Its answers
follow a few general rules, documented for users, so a test can predict them:
it echoes the user, reports tool results, calls the tools the user names (or
that `tool_choice` forces) with arguments taken from the message, and fills a
requested JSON schema. No rule knows any test, prompt or tool in particular.

The result is a `Reply`: content pieces (one word each, the emulator's
"tokens") or tool calls, a finish reason and token counts, ready to be
rendered as a JSON answer or as a stream.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ._chat_request import ChatRequest, ToolSpec, content_text
from ._schema_values import (
    ValuePool,
    arguments_for_schema,
    mask_spans,
    value_for_schema,
)

GREETING = "Hello! How can I help you today?"
TOOL_RESULT_PREFIX = "The tool returned: "

FinishReason = Literal["stop", "length", "tool_calls"]

_PIECE = re.compile(r"\S+\s*")
_TOKEN = re.compile(r"\w+|[^\w\s]")
_JSON_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
# Words of a tool's name: snake_case, kebab-case and camelCase parts.
_NAME_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_MIN_NAME_WORD = 4
_GENERIC_NAME_WORDS = frozenset({"tool", "tools", "function", "functions"})
_MAX_CALL_TEXT = 10_000
_LITERAL_NAMES: Mapping[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "True": True,
    "False": False,
    "None": None,
}


@dataclass(frozen=True)
class ToolCall:
    """One tool call of an answer; its arguments JSON streams in pieces."""

    name: str
    arguments: str
    pieces: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pieces", tuple(split_into_pieces(self.arguments)))


@dataclass(frozen=True)
class Reply:
    """What the emulator answers, before it is put on the wire."""

    pieces: tuple[str, ...]
    tool_calls: tuple[ToolCall, ...]
    finish_reason: FinishReason
    prompt_tokens: int
    reasoning: tuple[str, ...] = ()
    """The thinking a reasoning server sends before the answer, in pieces."""

    @property
    def content(self) -> str:
        """The answer's text."""
        return "".join(self.pieces)

    @property
    def completion_tokens(self) -> int:
        """Reasoning and content pieces, or argument pieces plus one per call."""
        calls = sum(len(call.pieces) + 1 for call in self.tool_calls)
        return len(self.reasoning) + len(self.pieces) + calls


def with_reasoning(reply: Reply) -> Reply:
    """The reply of a reasoning server: a short thinking text comes first.

    The text says what the answer will be: "Let me think. I will answer in 3
    words." or "Let me think. I will call get_weather."
    """
    if reply.tool_calls:
        names = ", ".join(call.name for call in reply.tool_calls)
        text = f"Let me think. I will call {names}."
    else:
        text = f"Let me think. I will answer in {len(reply.pieces)} words."
    return replace(reply, reasoning=tuple(split_into_pieces(text)))


def split_into_pieces(text: str) -> list[str]:
    """Split text into pieces of one word each, with the whitespace after it.

    Joined back, the pieces give the text unchanged; leading whitespace goes
    with the first piece.
    """
    pieces = _PIECE.findall(text)
    if not pieces:
        return [text] if text else []
    lead = len(text) - len(text.lstrip())
    if lead:
        pieces[0] = text[:lead] + pieces[0]
    return pieces


def count_tokens(text: str) -> int:
    """The emulator's token count: words and punctuation marks."""
    return len(_TOKEN.findall(text))


def compose_reply(request: ChatRequest) -> Reply:
    """Decide the answer to a checked request, by the documented rules."""
    prompt_tokens = sum(_message_tokens(message) for message in request.messages)
    user_text = _last_user_text(request.messages)
    calls = _tool_calls(request, user_text)
    if calls:
        return Reply((), tuple(calls), "tool_calls", prompt_tokens)
    text = _answer_text(request, user_text)
    finish: FinishReason = "stop"
    cut = min(
        (index for index in (text.find(stop) for stop in request.stop) if index >= 0),
        default=-1,
    )
    if cut >= 0:
        text = text[:cut]
    pieces = split_into_pieces(text)
    if request.max_tokens is not None and len(pieces) > request.max_tokens:
        pieces = pieces[: request.max_tokens]
        finish = "length"
    return Reply(tuple(pieces), (), finish, prompt_tokens)


def _message_tokens(message: Mapping[str, Any]) -> int:
    count = count_tokens(content_text(message.get("content")))
    for call in message.get("tool_calls") or ():
        function = call["function"]
        count += 1 + count_tokens(function["arguments"])
    return count


def _last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    for message in reversed(messages):
        if message["role"] == "user":
            return content_text(message.get("content"))
    return ""


def _answer_text(request: ChatRequest, user_text: str) -> str:
    """Rules for a text answer: structured output, tool results, or the echo."""
    response_format = request.response_format
    if response_format is not None and response_format.kind == "json_schema":
        value = value_for_schema(response_format.schema or {}, ValuePool(user_text))
        return json.dumps(value, ensure_ascii=False)
    if response_format is not None and response_format.kind == "json_object":
        return json.dumps(_json_object(ValuePool(user_text)), ensure_ascii=False)
    results: list[str] = []
    for message in reversed(request.messages):
        if message["role"] not in ("tool", "function"):
            break
        results.append(content_text(message.get("content")))
    if results:
        return TOOL_RESULT_PREFIX + "; ".join(reversed(results))
    return user_text if user_text.strip() else GREETING


def _json_object(pool: ValuePool) -> dict[str, str]:
    """JSON mode: the quoted names in the message become the object's keys."""
    keys: list[str] = []
    while (quoted := pool.take_string()) is not None:
        if _JSON_KEY.fullmatch(quoted) and quoted not in keys:
            keys.append(quoted)
    return {key: pool.text for key in keys or ["text"]}


@dataclass(frozen=True)
class _Mention:
    """Where the message names a tool, and the values of its call syntax."""

    position: int
    tool: ToolSpec
    call: _CallSyntax | None


@dataclass(frozen=True)
class _CallSyntax:
    """`name(3, b="x")` written out in the message."""

    span: tuple[int, int]
    positional: tuple[Any, ...]
    keywords: Mapping[str, Any]


def _tool_calls(request: ChatRequest, user_text: str) -> list[ToolCall]:
    """Which tools to call, and with what arguments (reply rules 1 and 2)."""
    if not request.tools or request.tool_choice == "none":
        return []
    mentions = _mentions(user_text, request.tools)
    if request.forced_tool is not None:
        chosen = [m for m in mentions if m.tool.name == request.forced_tool]
        if not chosen:
            tool = next(t for t in request.tools if t.name == request.forced_tool)
            chosen = [_Mention(0, tool, None)]
    elif mentions and request.messages[-1]["role"] == "user":
        chosen = mentions
    elif request.tool_choice == "required":
        chosen = mentions or [_Mention(0, request.tools[0], None)]
    else:
        return []
    if not request.parallel_tool_calls:
        chosen = chosen[:1]
    spans = [m.call.span for m in mentions if m.call is not None]
    pool = ValuePool(user_text, exclude=spans)
    calls: list[ToolCall] = []
    for mention in chosen:
        given = mention.call
        arguments = arguments_for_schema(
            mention.tool.parameters,
            pool,
            given.positional if given else (),
            given.keywords if given else None,
        )
        calls.append(
            ToolCall(mention.tool.name, json.dumps(arguments, ensure_ascii=False))
        )
    return calls


def _mentions(text: str, tools: Sequence[ToolSpec]) -> list[_Mention]:
    """The tools the message names, in order of first mention.

    A tool is named by call syntax `name(...)`, by its name as a word, or by
    a word of its name of at least four letters other than "tool" and
    "function" ("weather" names `get_weather`). Words inside another tool's
    name do not count: `send_email_draft()` does not name a tool `send_email`.
    """
    names: dict[str, list[int]] = {}
    spans: list[tuple[int, int]] = []
    for tool in tools:
        pattern = rf"(?<![\w-]){re.escape(tool.name)}(?![\w-])"
        hits = list(re.finditer(pattern, text, re.IGNORECASE))
        names[tool.name] = [hit.start() for hit in hits]
        spans.extend(hit.span() for hit in hits)
    words_text = mask_spans(text, spans)
    found: list[_Mention] = []
    for tool in tools:
        call = _find_call(text, tool.name)
        positions = names[tool.name] + ([call.span[0]] if call else [])
        for word in _name_words(tool.name):
            pattern = rf"(?<![^\W_]){word}(?![^\W_])"
            hit = re.search(pattern, words_text, re.IGNORECASE)
            if hit:
                positions.append(hit.start())
        if positions:
            found.append(_Mention(min(positions), tool, call))
    found.sort(key=lambda mention: mention.position)
    return found


def _name_words(name: str) -> list[str]:
    words = (word.lower() for word in _NAME_WORD.findall(name))
    return [
        re.escape(word)
        for word in words
        if len(word) >= _MIN_NAME_WORD and word not in _GENERIC_NAME_WORDS
    ]


def _find_call(text: str, name: str) -> _CallSyntax | None:
    """Find `name(...)` in the text and read its arguments, if they parse.

    Arguments are Python/JSON literals; a bare word is taken as a string.
    Syntax whose arguments do not parse still names the tool, but gives no
    values (and its text stays available to the other rules).
    """
    for match in re.finditer(rf"(?<![\w.]){re.escape(name)}\s*\(", text):
        end = _closing_parenthesis(text, match.end())
        if end is None:
            continue
        inner = text[match.end() : end]
        parsed = _parse_arguments(inner)
        if parsed is None:
            return _CallSyntax((match.start(), match.start()), (), {})
        positional, keywords = parsed
        return _CallSyntax((match.start(), end + 1), positional, keywords)
    return None


def _closing_parenthesis(text: str, start: int) -> int | None:
    depth = 1
    quote: str | None = None
    index = start
    limit = min(len(text), start + _MAX_CALL_TEXT)
    while index < limit:
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return None


def _parse_arguments(inner: str) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    try:
        tree = ast.parse(f"f({inner})", mode="eval")
        call = tree.body
        if not isinstance(call, ast.Call):
            return None
        positional = tuple(_literal(node) for node in call.args)
        keywords = {
            keyword.arg: _literal(keyword.value)
            for keyword in call.keywords
            if keyword.arg is not None
        }
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError):
        return None
    return positional, keywords


def _literal(node: ast.expr) -> Any:
    if isinstance(node, ast.Name):
        return _LITERAL_NAMES.get(node.id, node.id)
    if isinstance(node, ast.List):
        return [_literal(item) for item in node.elts]
    if isinstance(node, ast.Dict):
        return {
            _literal(key) if key is not None else None: _literal(value)
            for key, value in zip(node.keys, node.values, strict=True)
        }
    return ast.literal_eval(node)
