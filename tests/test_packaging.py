"""What `pip install .` ships: every package, and the default playbook inside the package, so
`callassist serve` finds its playbook outside the checkout.

The wheel is built from a copy of the sources (an in-tree build would leave build/ and
*.egg-info in the checkout), unpacked, and asked from a process that cannot see the checkout
where its playbook is.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("assist", "stream", "prompts", "pyproject.toml", "README.md")
PLAYBOOK_PACKAGE = "assist/default_playbook"  # where pyproject.toml maps prompts/
BUILD_TIMEOUT_S = 300.0
PROBE_TIMEOUT_S = 120.0

# Run in a process whose sys.path starts at the unpacked wheel and never holds the checkout.
PROBE = """
import json
import assist
from assist.playbook import default_playbook_dir, load_playbook
from stream.live.pipeline import playbook_dir
from stream.settings import load_settings
folder = default_playbook_dir()
print(json.dumps({
    "assist": assist.__file__,
    "default": str(folder),
    "service": str(playbook_dir(load_settings(None, {}))),
    "version": load_playbook(folder).version,
}))
"""


def package_folders() -> set[str]:
    return {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("assist", "stream")
        for init in (ROOT / top).rglob("__init__.py")
    }


def test_every_package_is_listed_for_the_wheel() -> None:
    """pyproject.toml lists the packages (a `find` cannot map prompts/ into assist/), so a new
    package folder must be added there or it silently goes missing from the wheel."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(config["packages"])
    assert config["package-dir"] == {"assist.default_playbook": "prompts"}
    assert listed == package_folders() | {"assist.default_playbook"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            ".",
        ],
        cwd=src,
        check=True,
        timeout=BUILD_TIMEOUT_S,
        capture_output=True,
    )
    (built,) = out.glob("callassist-*.whl")
    return built


@pytest.mark.slow
def test_wheel_carries_the_playbook_and_static_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    playbook = {f"{PLAYBOOK_PACKAGE}/{p.name}" for p in (ROOT / "prompts").iterdir() if p.is_file()}
    assert {f"{PLAYBOOK_PACKAGE}/playbook.yaml", f"{PLAYBOOK_PACKAGE}/labelled.jsonl"} <= playbook
    assert playbook <= names, sorted(playbook - names)
    static = {f"stream/web/static/{p.name}" for p in (ROOT / "stream" / "web" / "static").iterdir()}
    assert static <= names, sorted(static - names)
    modules = {str(p.relative_to(ROOT)) for top in ("assist", "stream") for p in (ROOT / top).rglob("*.py")}
    assert modules <= names, sorted(modules - names)


@pytest.mark.slow
def test_installed_package_finds_its_own_playbook(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    # -P: the working directory is not on sys.path either
    stdout = subprocess.check_output(
        [sys.executable, "-P", "-c", PROBE], cwd=tmp_path, env=env, timeout=PROBE_TIMEOUT_S, text=True
    )
    found = json.loads(stdout.strip().splitlines()[-1])
    assert Path(found["assist"]).is_relative_to(site)
    assert Path(found["default"]) == site / PLAYBOOK_PACKAGE
    assert Path(found["service"]) == site / PLAYBOOK_PACKAGE
    assert found["version"]


def test_checkout_reads_its_own_prompts_folder() -> None:
    """Tests and editable installs run the checkout's files; they must read this checkout's
    prompts/ (not an installed copy), so playbook edits take effect without reinstalling."""
    from assist.playbook import default_playbook_dir

    assert default_playbook_dir() == ROOT / "prompts"
