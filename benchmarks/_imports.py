"""Import time, each import in a fresh interpreter.

The clock runs inside the child around the import statement alone, so
interpreter start-up (the same for all) does not dilute the difference.

Two forms are measured. The issue's: `import langchain_dfehub` against
`import langchain_openai` and the floor `import langchain_core.language_models`.
But a package may resolve its names lazily (PEP 562, as langchain-core 1.x
does for `language_models`), and then `import package` costs next to nothing
while the first use pays. So the second form imports what a user needs to
make a model: `from langchain_dfehub import ChatDfeHub`, `from
langchain_openai import ChatOpenAI`, and the floor `from
langchain_core.language_models import BaseChatModel`, the base class every
chat model must import.

Every contender is timed with its bytecode cached, as an installed package
is (pip compiles a wheel's modules when it installs it). This package is
installed in editable mode, so its bytecode is written by the untimed first
import; that import runs without `PYTHONDONTWRITEBYTECODE`, which would
otherwise make every timed import compile this package's source again and
charge it for a cost no installed package pays.

A fresh interpreter's import takes half a second or more, and on a shared
machine the same import varies by a quarter from one minute to the next, far
more than the difference measured. So the contenders of a form run one after
the other in each round (in the opposite order every other round), and the
ratio reported is the median of the ratios within each round: neighbours in
time share the machine's mood, as in the other paired measures.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from benchmarks._contenders import DFEHUB, FLOOR, OPENAI

PACKAGE = "package"
CLASS = "class"
IMPORTS: Mapping[str, Mapping[str, str]] = {
    PACKAGE: {
        DFEHUB: "import langchain_dfehub",
        OPENAI: "import langchain_openai",
        FLOOR: "import langchain_core.language_models",
    },
    CLASS: {
        DFEHUB: "from langchain_dfehub import ChatDfeHub",
        OPENAI: "from langchain_openai import ChatOpenAI",
        FLOOR: "from langchain_core.language_models import BaseChatModel",
    },
}
_CHILD = (
    "import time\n"
    "start = time.perf_counter()\n"
    "{statement}\n"
    "print(time.perf_counter() - start)\n"
)


def import_seconds(statement: str, cwd: Path, *, write_bytecode: bool = False) -> float:
    """Seconds to run an import statement in a new interpreter, timed inside it.

    With `write_bytecode`, the child caches the bytecode it compiles even
    where the environment says not to.
    """
    env = dict(os.environ)
    if write_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    result = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-c", _CHILD.format(statement=statement)],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
        env=env,
    )
    return float(result.stdout.strip().splitlines()[-1])


def measure_imports(
    *, rounds: int, cwd: Path, progress: Callable[[str], None]
) -> dict[str, dict[str, list[float]]]:
    """Import seconds per form and contender; every statement once per round.

    A contender's values line up with the others' by round, for paired ratios.
    """
    for statements in IMPORTS.values():  # caches any missing bytecode, untimed
        for statement in statements.values():
            import_seconds(statement, cwd, write_bytecode=True)
    times: dict[str, dict[str, list[float]]] = {
        form: {name: [] for name in names} for form, names in IMPORTS.items()
    }
    for index in range(rounds):
        for form, statements in IMPORTS.items():
            order = list(statements.items())
            if index % 2:  # no contender always goes first in its round
                order.reverse()
            for name, statement in order:
                times[form][name].append(import_seconds(statement, cwd))
    progress(f"imports: {rounds} rounds done")
    return times
