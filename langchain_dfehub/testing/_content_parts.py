"""Image, audio and file parts of a user message, checked as OpenAI checks them.

OpenAI's API reference for Chat Completions (`messages[].content[]` of a
user message) defines the three media parts:

- `image_url`: `{"url": ..., "detail"?: "auto" | "low" | "high"}`, where the
  URL is an http(s) URL the server fetches or a data URL of base64 image data.
  The vision guide names the formats taken: PNG, JPEG, WEBP and non-animated
  GIF; other data is answered with a 400 of code `invalid_image_format`.
- `input_audio`: `{"data": <base64>, "format": "wav" | "mp3"}`, both required.
- `file`: `{"file_data"?: <data URL, base64>, "file_id"?: ..., "filename"?:
  ...}`: the file inline or by the id of an upload, one of the two.

The emulator fetches nothing: an http(s) image URL is taken as given.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from typing import Any

_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)", re.S)
_IMAGE_MAGIC = {
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpeg": (b"\xff\xd8\xff",),
    "gif": (b"GIF87a", b"GIF89a"),
    "webp": (b"RIFF",),  # then 4 bytes of size and "WEBP"
}
_DETAILS = ("auto", "low", "high")
_AUDIO_FORMATS = ("wav", "mp3")

Problem = Callable[[str, str | None], Exception]
"""(message, param) -> the 400 error to raise."""


def check_media_part(
    kind: str, part: Mapping[str, Any], where: str, fail: Problem
) -> None:
    """Check one `image_url`, `input_audio` or `file` part; raise `fail(...)`."""
    if kind == "image_url":
        _check_image(part, f"{where}.image_url", fail)
    elif kind == "input_audio":
        _check_audio(part, f"{where}.input_audio", fail)
    elif kind == "file":
        _check_file(part, f"{where}.file", fail)


def _decoded(data: object) -> bytes | None:
    if not isinstance(data, str):
        return None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def _check_image(part: Mapping[str, Any], where: str, fail: Problem) -> None:
    url = part.get("url")
    if not isinstance(url, str):
        raise fail(f"Missing required parameter: '{where}.url'.", f"{where}.url")
    detail = part.get("detail")
    if detail is not None and detail not in _DETAILS:
        names = ", ".join(f"'{name}'" for name in _DETAILS)
        raise fail(
            f"Invalid value: {detail!r}. Supported values are: {names}.",
            f"{where}.detail",
        )
    if url.startswith(("http://", "https://")):
        return
    match = _DATA_URL.fullmatch(url)
    if match is None or not match["mime"].startswith("image/"):
        raise fail(
            f"Invalid '{where}.url'. Expected a valid URL or a base64-encoded data"
            " URL with an image MIME type (e.g. 'data:image/png;base64,...').",
            f"{where}.url",
        )
    data = _decoded(match["data"])
    if data is None or not _is_image(data):
        raise fail(
            "You uploaded an unsupported image. Please make sure your image has"
            " one of the following formats: ['png', 'jpeg', 'gif', 'webp'].",
            None,
        )


def _is_image(data: bytes) -> bool:
    for kind, magics in _IMAGE_MAGIC.items():
        if data.startswith(magics):
            return kind != "webp" or data[8:12] == b"WEBP"
    return False


def _check_audio(part: Mapping[str, Any], where: str, fail: Problem) -> None:
    for name in ("data", "format"):
        if part.get(name) is None:
            raise fail(
                f"Missing required parameter: '{where}.{name}'.", f"{where}.{name}"
            )
    audio_format = part["format"]
    if audio_format not in _AUDIO_FORMATS:
        names = " and ".join(f"'{name}'" for name in _AUDIO_FORMATS)
        raise fail(
            f"Invalid value: {audio_format!r}. Supported values are: {names}.",
            f"{where}.format",
        )
    if _decoded(part["data"]) is None:
        raise fail(
            f"Invalid '{where}.data': expected base64-encoded audio data.",
            f"{where}.data",
        )


def _check_file(part: Mapping[str, Any], where: str, fail: Problem) -> None:
    file_data, file_id = part.get("file_data"), part.get("file_id")
    if file_data is None and file_id is None:
        raise fail(
            f"Missing required parameter: '{where}.file_data' or '{where}.file_id'.",
            where,
        )
    filename = part.get("filename")
    if filename is not None and not isinstance(filename, str):
        raise fail(
            f"Invalid type for '{where}.filename': expected a string.",
            f"{where}.filename",
        )
    if file_data is None:
        return
    match = _DATA_URL.fullmatch(file_data) if isinstance(file_data, str) else None
    if match is None or _decoded(match["data"]) is None:
        raise fail(
            f"Invalid '{where}.file_data'. Expected a base64-encoded data URL"
            " (e.g. 'data:application/pdf;base64,...').",
            f"{where}.file_data",
        )
