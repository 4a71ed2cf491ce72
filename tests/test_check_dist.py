"""`scripts/check_dist.py` refuses archives that lack what `make dist` promises.

The archives here are small hand-made stand-ins for a wheel and an sdist, so
no build is needed: each test removes or adds one thing and expects the check
to name it.
"""

from __future__ import annotations

import importlib.util
import io
import tarfile
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_dist.py"
DIST_INFO = "langchain_dfehub-0.1.0.dist-info"
GOOD_WHEEL = {
    "langchain_dfehub/__init__.py": "",
    "langchain_dfehub/py.typed": "",
    "langchain_dfehub/_gate/lua/decisions.lua": "",
    "langchain_dfehub/_gate/lua/gate.lua": "",
    f"{DIST_INFO}/WHEEL": "Wheel-Version: 1.0\n",
    f"{DIST_INFO}/METADATA": "Metadata-Version: 2.4\nLicense-Expression: MIT\n",
    f"{DIST_INFO}/entry_points.txt": "[pytest11]\ndfehub_emulator = x\n",
    f"{DIST_INFO}/licenses/LICENSE": "MIT License\n",
}
GENERATED = {"PKG-INFO", "setup.cfg", "langchain_dfehub.egg-info/SOURCES.txt"}


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_dist", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_dist = _load_script()
TRACKED = {*check_dist.SDIST_REQUIRED, "tests/test_a.py"}


def _wheel(tmp_path: Path, files: dict[str, str]) -> Path:
    path = tmp_path / "langchain_dfehub-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def _sdist(tmp_path: Path, names: set[str]) -> Path:
    path = tmp_path / "langchain_dfehub-0.1.0.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name in sorted(names):
            info = tarfile.TarInfo(f"langchain_dfehub-0.1.0/{name}")
            archive.addfile(info, io.BytesIO(b""))
    return path


def test_a_complete_wheel_passes(tmp_path: Path):
    names = check_dist.check_wheel(_wheel(tmp_path, GOOD_WHEEL))

    assert f"{DIST_INFO}/licenses/LICENSE" in names


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({f"{DIST_INFO}/licenses/LICENSE": None}, "licenses/LICENSE"),
        ({f"{DIST_INFO}/METADATA": "Metadata-Version: 2.4\n"}, "License-Expression"),
        ({"langchain_dfehub/py.typed": None}, "py.typed"),
        ({f"{DIST_INFO}/entry_points.txt": "[console_scripts]\n"}, "pytest11"),
        ({"tests/test_a.py": ""}, "files outside the package: tests/test_a.py"),
        ({"langchain_dfehub/_gate/lua/gate.lua": None}, "_gate/lua/gate.lua"),
    ],
    ids=[
        "no-license",
        "no-expression",
        "no-py-typed",
        "no-plugin",
        "tests-inside",
        "no-lua",
    ],
)
def test_a_wheel_missing_a_promise_is_refused(
    tmp_path: Path, change: dict[str, str | None], complaint: str
):
    files = {**GOOD_WHEEL, **change}
    wheel = _wheel(tmp_path, {k: v for k, v in files.items() if v is not None})

    with pytest.raises(check_dist.DistError, match=complaint.replace(".", r"\.")):
        check_dist.check_wheel(wheel)


def test_an_sdist_with_every_tracked_file_passes(tmp_path: Path):
    names = check_dist.check_sdist(_sdist(tmp_path, TRACKED | GENERATED), TRACKED)

    assert set(names) == TRACKED | GENERATED


def test_an_sdist_missing_a_tracked_file_names_it(tmp_path: Path):
    sdist = _sdist(tmp_path, (TRACKED - {"tests/conftest.py"}) | GENERATED)

    with pytest.raises(check_dist.DistError, match=r"missing: tests/conftest\.py"):
        check_dist.check_sdist(sdist, TRACKED)


def test_an_sdist_with_an_untracked_file_names_it(tmp_path: Path):
    sdist = _sdist(tmp_path, TRACKED | GENERATED | {"tests/scratch.py"})

    with pytest.raises(check_dist.DistError, match=r"not track: tests/scratch\.py"):
        check_dist.check_sdist(sdist, TRACKED)


def test_outside_a_git_checkout_the_required_files_are_still_checked(tmp_path: Path):
    sdist = _sdist(tmp_path, (TRACKED - {"LICENSE"}) | GENERATED)

    with pytest.raises(check_dist.DistError, match="missing: LICENSE"):
        check_dist.check_sdist(sdist, tracked=None)
