"""Calling a model one way or another: sync or async, invoke or stream.

Shared by the tests that run one scenario on every path against a local
server and compare the text that comes back.
"""

from __future__ import annotations

import asyncio

from langchain_dfehub import ChatDfeHub


def call(model: ChatDfeHub, mode: str, streaming: bool = False) -> str:
    """The answer to "hi", by `mode` ("sync" or "async") and kind."""
    if mode == "sync":
        if streaming:
            return "".join(str(c.content) for c in model.stream("hi"))
        return str(model.invoke("hi").content)

    async def run() -> str:
        if streaming:
            return "".join([str(c.content) async for c in model.astream("hi")])
        return str((await model.ainvoke("hi")).content)

    return asyncio.run(run())


# Every way a caller gets an answer; `*-streaming` is `invoke` on a model with
# `streaming=True`, which streams under the hood.
EVERY_MODE = [
    "invoke",
    "stream",
    "invoke-streaming",
    "ainvoke",
    "astream",
    "ainvoke-streaming",
]


def answer(model: ChatDfeHub, mode: str, prompt: str = "hi") -> str:
    """The answer to `prompt`, asked one of the `EVERY_MODE` ways."""
    if mode.endswith("-streaming"):
        model = model.model_copy(update={"streaming": True})
        mode = mode.removesuffix("-streaming")
    if mode == "invoke":
        return str(model.invoke(prompt).content)
    if mode == "stream":
        return "".join(str(c.content) for c in model.stream(prompt))

    async def run() -> str:
        if mode == "astream":
            return "".join([str(c.content) async for c in model.astream(prompt)])
        return str((await model.ainvoke(prompt)).content)

    return asyncio.run(run())
