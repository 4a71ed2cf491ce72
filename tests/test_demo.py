"""`make demo` runs to the end and shows what it promises."""

from __future__ import annotations

import subprocess
import sys


def test_the_demo_runs_and_shows_the_wait_read_from_the_detail_text() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "langchain_dfehub.demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "Tell me something about LangChain, please." in out
    assert "|me |something |about |streaming, |please.|" in out
    assert "holding every call to it for 1.5 s" in out
    assert "30/30 answered" in out
    assert "Tell me something about concurrency, please." in out
    assert out.rstrip().endswith("Done.")
    assert run.stderr == ""
