"""`make demo`: ChatDfeHub as a user meets it, against the bundled emulator.

It starts the local DfeHub emulator (no network needed), then shows an LCEL
chain invoked and streamed, a throttled request whose wait is read from the
service's `detail` text, async calls, and a burst over the service's rate
that queues at the service's gate instead of failing. Run it with
`python -m langchain_dfehub.demo`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

from langchain_core.language_models import LanguageModelInput
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable

from langchain_dfehub import ChatDfeHub
from langchain_dfehub.testing import DfeHubEmulator, Throttle


class _RetryNotes(logging.Handler):
    """Print ChatDfeHub's log lines, so the demo shows the wait it read."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"   [log] {record.getMessage()}")


def _heading(text: str) -> None:
    print(f"\n== {text}")


def main() -> int:
    """Run the demo; return the process exit code."""
    logger = logging.getLogger("langchain_dfehub")
    logger.addHandler(_RetryNotes())
    logger.setLevel(logging.WARNING)
    logger.propagate = False

    with DfeHubEmulator(chunk_delay=0.04) as emulator:
        print(f"DfeHub emulator listening at {emulator.base_url}")
        model = ChatDfeHub(base_url=emulator.base_url, temperature=0.5)
        prompt = ChatPromptTemplate.from_messages(
            [
                ("system", "You are a helpful assistant."),
                ("human", "Tell me something about {topic}, please."),
            ]
        )
        chain = prompt | model | StrOutputParser()

        _heading("1. chain.invoke (prompt | ChatDfeHub | StrOutputParser)")
        print(chain.invoke({"topic": "LangChain"}))

        _heading("2. chain.stream: tokens printed as they arrive")
        for token in chain.stream({"topic": "streaming"}):
            if token:  # the role, finish and usage chunks carry no text
                print(token, end="|", flush=True)
        print()

        _heading("3. a throttled request: the wait is read from the `detail` text")
        emulator.add_faults(Throttle(wait=1.5))
        print(
            '   the server answers 429 {"detail": "Request was throttled.'
            ' Expected available in 1.5 seconds."}'
        )
        started = time.monotonic()
        answer = chain.invoke({"topic": "patience"})
        print(f"   answered after {time.monotonic() - started:.2f} s: {answer}")

        _heading("4. async: three streams at once with astream")
        started = time.monotonic()
        answers = asyncio.run(_three_at_once(chain))
        for answer in answers:
            print(f"   {answer}")
        print(
            f"   all three in {time.monotonic() - started:.2f} s: about the time of"
            " one, since they run concurrently"
        )

    _heading("5. a burst over the service's rate: calls queue at its gate")
    with DfeHubEmulator(throttle_rate="10/s") as throttling:
        burst = ChatDfeHub(base_url=throttling.base_url)
        prompts: list[LanguageModelInput] = [f"call {n} done" for n in range(30)]
        started = time.monotonic()
        replies = burst.batch(prompts, config={"max_concurrency": 30})
        done = sum(r.content == p for r, p in zip(replies, prompts, strict=True))
        state = burst.throttle_state
        print(
            f"   {done}/30 answered in {time.monotonic() - started:.1f} s"
            f" (the service allows 10/s); {state.sent} requests sent,"
            f" {state.throttled} throttled, now pacing at {state.pace or 0:.1f}/s"
        )

    print("\nDone.")
    return 0


async def _three_at_once(chain: Runnable[dict[str, str], str]) -> list[str]:
    async def collect(topic: str) -> str:
        return "".join([token async for token in chain.astream({"topic": topic})])

    topics = ("asyncio", "httpx", "concurrency")
    return list(await asyncio.gather(*(collect(topic) for topic in topics)))


if __name__ == "__main__":
    sys.exit(main())
