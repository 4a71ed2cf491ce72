"""Small, valid media files made in code: a PNG, a PDF and a WAV, for tests.

The emulator checks image, audio and file parts as OpenAI does (an image
must be PNG, JPEG, GIF or WEBP data), so tests send real files; they are
built here rather than downloaded, and no test needs the network.
"""

from __future__ import annotations

import base64
import io
import struct
import wave
import zlib


def png_bytes() -> bytes:
    """A 1x1 white PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\xff\xff")
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
    )


def pdf_bytes() -> bytes:
    """A one-page PDF that says "Dummy PDF file"."""
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )


def wav_bytes() -> bytes:
    """A tenth of a second of silence, 8 kHz mono."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\x00\x00" * 800)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    """The data as base64 text, as content blocks carry it."""
    return base64.b64encode(data).decode()
