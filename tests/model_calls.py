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
