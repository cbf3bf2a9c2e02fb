"""Draw every zoo system's phase map into docs/images/zoo-<name>.png.

Usage: .venv/bin/python scripts/zoo_pictures.py [OUTPUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

from tandem.sim.zoo import ZOO
from tandem.sim.zoo.plots import plot_zoo_system

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "docs" / "images"
    out.mkdir(parents=True, exist_ok=True)
    for name, system in ZOO.items():
        path = out / f"zoo-{name}.png"
        plot_zoo_system(system, path)
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
