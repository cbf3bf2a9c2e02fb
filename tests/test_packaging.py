"""The layout of DESIGN.md: every folder with an `__init__.py` is a listed subpackage of `tandem`, and
the checkout's root imports exactly as an installed tandem does."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: checkout folder -> the package it installs as; the core is not named `tandem`, so that a script or
#: notebook started in the checkout's root imports the installed package, not a folder that shadows it
TOP_LEVEL = {"core": "tandem"} | {
    folder: f"tandem.{folder}"
    for folder in ("campaign", "robots", "devices", "plans", "analysis", "agents", "sim")
}
#: what a newcomer's first script imports, the bundled demo it runs, and the twin's instrument profiles
PROBE = (
    "import tandem, tandem.robots, tandem.devices, tandem.plans, tandem.analysis, tandem.agents, "
    "tandem.campaign, tandem.sim, tandem.cli; "
    "from tandem.campaign.bundled import DEMO_CAMPAIGN; "
    "from tandem.bundled_profiles import IPYTHON_PROFILE, QUEUESERVER_PROFILE; "
    "from tandem.instrument_profile_file import bundled_profile_names; "
    "assert bundled_profile_names() == ('sans', 'saxs'), bundled_profile_names(); "
    "assert DEMO_CAMPAIGN.is_file(), DEMO_CAMPAIGN; "
    "assert (IPYTHON_PROFILE / 'startup' / '00-station.py').is_file(), IPYTHON_PROFILE; "
    "assert (QUEUESERVER_PROFILE / 'startup.py').is_file(), QUEUESERVER_PROFILE; "
    "print(tandem.__file__)"
)


def test_every_package_folder_is_installed_under_tandem() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    data_only = {"tandem.profiles": "profiles"}
    assert config["package-dir"] == {package: folder for folder, package in TOP_LEVEL.items()} | data_only
    for folder, package in TOP_LEVEL.items():
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            relative = init.parent.relative_to(ROOT / folder).parts
            name = ".".join((package, *relative))
            assert name in listed, f"{init.parent} is not listed in pyproject's [tool.setuptools] packages"


def test_every_part_says_what_belongs_in_it() -> None:
    for package in TOP_LEVEL.values():
        doc = importlib.import_module(package).__doc__
        assert doc, f"{package} needs a docstring saying what belongs there"
        assert len(doc.split()) > 15, f"{package}'s docstring is too short to say what belongs there"


def _probe(cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_checkouts_root_imports_the_installed_package() -> None:
    # python puts the working directory first on sys.path: nothing in the root may shadow `tandem`
    assert not (ROOT / "tandem").exists()
    location = Path(_probe(ROOT))
    assert ROOT / "core" not in location.parents, "the root imported its own folder, not the install"


@pytest.mark.slow
def test_a_wheel_holds_every_part_and_the_bundled_files(tmp_path: Path) -> None:
    """Built and installed apart from the checkout, tandem still finds its demo and its profile."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = wheels.glob("tandem-*.whl")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # the wheel's copy comes first on the path; the .venv's dependencies stay importable behind it
    location = Path(_probe(elsewhere, {**os.environ, "PYTHONPATH": str(target)}))
    assert target in location.parents, location
