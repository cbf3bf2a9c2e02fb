"""Each name has one import path: a module's `__all__` lists only what the module itself defines.

When a module is split, the names that moved are imported from where they now live, not re-exported
by the old module (issue 14: "one way to do each thing"). A package's `__init__` may gather its
public names: that is the package's face, not a second path.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("core", "campaign", "robots", "devices", "plans", "analysis", "agents", "sim")


def _reexported(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    defined: set[str] = set()
    imported: set[str] = set()
    exported: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    defined.add(target.id)
                    if target.id == "__all__" and isinstance(node.value, ast.List | ast.Tuple):
                        exported = [e.value for e in node.value.elts if isinstance(e, ast.Constant)]
        elif isinstance(node, ast.ImportFrom):
            imported.update(alias.asname or alias.name for alias in node.names)
    return [name for name in exported if name in imported and name not in defined]


def test_no_module_re_exports_a_name_defined_elsewhere() -> None:
    offenders = {
        str(path.relative_to(ROOT)): names
        for part in PARTS
        for path in sorted((ROOT / part).rglob("*.py"))
        if path.name != "__init__.py" and (names := _reexported(path))
    }
    assert not offenders, f"import these from the modules that define them: {offenders}"


def test_the_check_sees_a_re_export(tmp_path: Path) -> None:
    module = tmp_path / "old.py"
    module.write_text('from new import Moved\n\ndef kept() -> None: ...\n\n__all__ = ["Moved", "kept"]\n')
    assert _reexported(module) == ["Moved"]
