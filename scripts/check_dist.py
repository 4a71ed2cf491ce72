"""Check what the built wheel and sdist contain, before anyone installs them.

`make dist` runs this after `python -m build`. The wheel must be the package
alone with its license, typing marker and pytest plugin entry point. The sdist
must be complete: every file git tracks (the tests with their conftest and
snapshots, the guide in docs/ that they run, the integration suite, the
benchmarks, the scripts, the Makefile),
so its tests run as they do in a clone, and nothing git does not track.

Usage: python scripts/check_dist.py DIST_DIR
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

PACKAGE = "langchain_dfehub"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
LICENSE_EXPRESSION = "MIT"
# Package data the wheel must carry: the gate's Lua scripts, which Redis runs.
WHEEL_DATA = (
    f"{PACKAGE}/_gate/lua/decisions.lua",
    f"{PACKAGE}/_gate/lua/gate.lua",
)
# Written by the build into every sdist; git cannot track them.
SDIST_GENERATED = ("PKG-INFO", "setup.cfg", f"{PACKAGE}.egg-info/")
# Checked even where git is unavailable (an unpacked sdist).
SDIST_REQUIRED = (
    "LICENSE",
    "CHANGELOG.md",
    "README.md",
    "docs/index.md",
    "Makefile",
    "pyproject.toml",
    "tests/conftest.py",
    "tests/__snapshots__/test_standard.ambr",
    "integration_tests/conftest.py",
    "scripts/smoke_installed.py",
)


class DistError(Exception):
    """An archive lacks something it must carry, or carries what it must not."""


def _one(dist_dir: Path, pattern: str) -> Path:
    found = sorted(dist_dir.glob(pattern))
    if len(found) != 1:
        msg = (
            f"expected one {pattern} in {dist_dir}, found {len(found)}: "
            "run `make dist`, which empties the directory first"
        )
        raise DistError(msg)
    return found[0]


def check_wheel(wheel: Path) -> list[str]:
    """The wheel: package files and dist-info only; license, py.typed, Lua, plugin."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = next(
            (name.split("/")[0] for name in names if name.endswith(".dist-info/WHEEL")),
            None,
        )
        if dist_info is None:
            msg = f"{wheel.name} has no .dist-info/WHEEL: not a wheel"
            raise DistError(msg)
        metadata = archive.read(f"{dist_info}/METADATA").decode("utf-8")
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode("utf-8")
    problems = []
    if f"{dist_info}/licenses/LICENSE" not in names:
        problems.append(f"no {dist_info}/licenses/LICENSE (check `license-files`)")
    if f"License-Expression: {LICENSE_EXPRESSION}\n" not in metadata:
        problems.append(f"METADATA has no 'License-Expression: {LICENSE_EXPRESSION}'")
    if f"{PACKAGE}/py.typed" not in names:
        problems.append(f"no {PACKAGE}/py.typed: type checkers would ignore the hints")
    problems += [
        f"no {name}: the Redis gate could not run"
        for name in WHEEL_DATA
        if name not in names
    ]
    if "[pytest11]" not in entry_points:
        problems.append("no [pytest11] entry point: the emulator fixtures would vanish")
    strays = [name for name in names if name.split("/")[0] not in {PACKAGE, dist_info}]
    if strays:
        problems.append(f"files outside the package: {', '.join(sorted(strays))}")
    if problems:
        raise DistError(f"{wheel.name}: " + "; ".join(problems))
    return names


def _git(*args: str) -> str | None:
    """Run git in the project root; None when git or a checkout is missing."""
    try:
        run = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), *args],  # noqa: S607 - git from PATH
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return run.stdout


def _tracked_files() -> set[str] | None:
    """The files git tracks in this project, or None outside its own checkout.

    An unpacked sdist inside some other checkout is not a checkout of ours:
    its files would all look untracked.
    """
    top = _git("rev-parse", "--show-toplevel")
    if top is None or Path(top.strip()).resolve() != PROJECT_ROOT:
        return None
    listing = _git("ls-files", "-z")
    return None if listing is None else {n for n in listing.split("\0") if n}


def check_sdist(sdist: Path, tracked: set[str] | None) -> list[str]:
    """The sdist: every tracked file, the generated metadata, nothing else."""
    with tarfile.open(sdist) as archive:
        members = [member.name for member in archive.getmembers() if member.isfile()]
    names = [str(PurePosixPath(*PurePosixPath(m).parts[1:])) for m in members]
    present = set(names)
    problems = []
    missing = sorted(set(SDIST_REQUIRED) - present)
    if tracked is not None:
        missing = sorted(tracked - present)
        extra = sorted(
            name
            for name in present - tracked
            if not any(
                name == generated or name.startswith(generated)
                for generated in SDIST_GENERATED
            )
        )
        if extra:
            problems.append(
                f"files git does not track: {', '.join(extra)} "
                "(commit or delete them, or exclude them in MANIFEST.in)"
            )
    if missing:
        problems.append(
            f"tracked files missing: {', '.join(missing)} (add them to MANIFEST.in)"
        )
    if problems:
        raise DistError(f"{sdist.name}: " + "; ".join(problems))
    return names


def main(argv: list[str] | None = None) -> int:
    """Check both archives in DIST_DIR; status 1 and the reasons if one is wrong."""
    parser = argparse.ArgumentParser(
        description="Check the contents of the built wheel and sdist."
    )
    parser.add_argument("dist_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        wheel = _one(args.dist_dir, "*.whl")
        sdist = _one(args.dist_dir, "*.tar.gz")
        wheel_names = check_wheel(wheel)
        tracked = _tracked_files()
        sdist_names = check_sdist(sdist, tracked)
    except DistError as error:
        print(f"dist check FAILED: {error}", file=sys.stderr)
        return 1
    license_file = next(name for name in wheel_names if name.endswith("/LICENSE"))
    print(f"ok  {wheel.name}: {len(wheel_names)} files, {license_file}")
    against = "every file git tracks" if tracked is not None else "the required files"
    tests = sum(1 for name in sdist_names if name.startswith("tests/test_"))
    print(
        f"ok  {sdist.name}: {len(sdist_names)} files, {against}, "
        f"{tests} test modules with their conftest and snapshots"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
