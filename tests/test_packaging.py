"""The layout of DESIGN.md: every folder with an `__init__.py` is a listed subpackage of `tandem`."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP_LEVEL = {"tandem": "tandem"} | {
    folder: f"tandem.{folder}" for folder in ("robots", "devices", "plans", "analysis", "agents", "sim")
}


def test_every_package_folder_is_installed_under_tandem() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    assert config["package-dir"] == {package: folder for folder, package in TOP_LEVEL.items()}
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
