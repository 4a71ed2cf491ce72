"""Smoke test of an installed langchain-dfehub: what a new user meets first.

`make dist` installs the freshly built wheel into an empty virtual environment
and runs this script there, so a wheel that lacks a module, its metadata, the
emulator's command line or the pytest plugin's entry point fails before it is
published. The test suite runs it too, against the development install, so the
script itself cannot rot.

Every child process runs in a temporary directory: a checkout in the current
directory would otherwise shadow the installed package (`python -m` puts the
current directory first on `sys.path`).

Usage: python scripts/smoke_installed.py [--require-installed]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import queue
import subprocess
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path
from typing import IO

DISTRIBUTION = "langchain-dfehub"
LICENSE_EXPRESSION = "MIT"
START_TIMEOUT = 30.0
CHILD_TIMEOUT = 120.0

PLUGIN_TEST = """\
from langchain_dfehub import ChatDfeHub


def test_the_installed_plugin_serves_an_emulator(dfehub_emulator):
    model = ChatDfeHub(base_url=dfehub_emulator.base_url, max_retries=0)
    assert model.invoke("plugin smoke").content == "plugin smoke"
"""


class SmokeError(Exception):
    """A check failed; the message says what was expected and what was found."""


def check_import(*, require_installed: bool) -> str:
    """Import the package and the model class; optionally insist on site-packages.

    `--require-installed` guards against testing a source tree by mistake: the
    package must come from this interpreter's site-packages.
    """
    import langchain_dfehub
    from langchain_dfehub import ChatDfeHub

    location = Path(langchain_dfehub.__file__).resolve().parent
    if require_installed:
        site_dirs = {
            Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")
        }
        if not any(location.is_relative_to(site) for site in site_dirs):
            msg = (
                f"langchain_dfehub was imported from {location}, not from this "
                f"interpreter's site-packages ({', '.join(map(str, site_dirs))}); "
                "run the script with the interpreter of the environment that has "
                "the wheel installed, outside the source tree"
            )
            raise SmokeError(msg)
    version = langchain_dfehub.__version__
    print(f"ok  import langchain_dfehub {version} and {ChatDfeHub.__name__}")
    print(f"    from {location}")
    return version


def check_metadata(version: str) -> None:
    """The installed metadata agrees with the module and carries the license."""
    distribution = importlib.metadata.distribution(DISTRIBUTION)
    metadata = distribution.metadata
    if metadata["Version"] != version:
        msg = (
            f"the installed metadata says version {metadata['Version']}, "
            f"the module says {version}: reinstall the package"
        )
        raise SmokeError(msg)
    if metadata["License-Expression"] != LICENSE_EXPRESSION:
        msg = (
            f"License-Expression is {metadata['License-Expression']!r}, expected "
            f"{LICENSE_EXPRESSION!r}: check `license` in pyproject.toml"
        )
        raise SmokeError(msg)
    shipped = [str(file) for file in distribution.files or () if file.name == "LICENSE"]
    if not shipped:
        msg = "the installed distribution has no LICENSE file: check `license-files`"
        raise SmokeError(msg)
    print(
        f"ok  metadata: version {version}, License-Expression "
        f"{LICENSE_EXPRESSION}, {shipped[0]}"
    )


def _first_line(stream: IO[str], timeout: float) -> str:
    """The first line a child prints, or an error after `timeout` seconds."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout).strip()
    except queue.Empty:
        msg = f"the emulator printed no base URL within {timeout:.0f} s"
        raise SmokeError(msg) from None


def check_emulator_cli(workdir: Path) -> None:
    """The emulator's command line starts, answers one invoke and stops cleanly."""
    from langchain_dfehub import ChatDfeHub

    command = [sys.executable, "-m", "langchain_dfehub.testing", "--port", "0"]
    with (
        tempfile.TemporaryFile("w+", encoding="utf-8") as errors,
        subprocess.Popen(
            command, cwd=workdir, stdout=subprocess.PIPE, stderr=errors, text=True
        ) as emulator,
    ):
        try:
            assert emulator.stdout is not None
            base_url = _first_line(emulator.stdout, START_TIMEOUT)
            if not base_url.startswith("http://127.0.0.1:"):
                errors.seek(0)
                msg = (
                    f"the emulator printed {base_url!r} instead of its base URL; "
                    f"its stderr: {errors.read().strip()!r}"
                )
                raise SmokeError(msg)
            model = ChatDfeHub(base_url=base_url, max_retries=0, timeout=10)
            answer = model.invoke("smoke test").content
            if answer != "smoke test":
                msg = f"the emulator answered {answer!r}, not the echo 'smoke test'"
                raise SmokeError(msg)
        finally:
            emulator.terminate()
            status = emulator.wait(timeout=CHILD_TIMEOUT)
    if status != 0:
        msg = f"the emulator exited with status {status} on SIGTERM, expected 0"
        raise SmokeError(msg)
    print(f"ok  python -m langchain_dfehub.testing: {base_url}, one invoke, exit 0")


def check_pytest_plugin(workdir: Path) -> None:
    """A test file that only names `dfehub_emulator` gets it from the plugin."""
    test_file = workdir / "test_installed_plugin.py"
    test_file.write_text(PLUGIN_TEST, encoding="utf-8")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    run = subprocess.run(
        [*command, test_file.name],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    if run.returncode != 0 or "1 passed" not in run.stdout:
        msg = (
            f"pytest with the installed plugin exited with status {run.returncode}:\n"
            f"{run.stdout}{run.stderr}"
        )
        raise SmokeError(msg)
    print("ok  pytest plugin: the dfehub_emulator fixture, 1 passed")


def main(argv: list[str] | None = None) -> int:
    """Run every check in order; the first failure ends the run with status 1."""
    parser = argparse.ArgumentParser(
        description="Smoke test of an installed langchain-dfehub."
    )
    parser.add_argument(
        "--require-installed",
        action="store_true",
        help="fail unless the package is imported from site-packages",
    )
    args = parser.parse_args(argv)
    try:
        version = check_import(require_installed=args.require_installed)
        check_metadata(version)
        with tempfile.TemporaryDirectory(prefix="dfehub-smoke-") as scratch:
            check_emulator_cli(Path(scratch))
            check_pytest_plugin(Path(scratch))
    except SmokeError as error:
        print(f"smoke test FAILED: {error}", file=sys.stderr)
        return 1
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
