"""A newcomer's terminal shows only tandem's own output: no solver banner (issue 13, "Also")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SAXS_DECK = Path(__file__).resolve().parents[2] / "examples" / "decks" / "saxs_lab.yaml"


def test_a_recipe_prints_no_highs_banner() -> None:
    command = [sys.executable, "-P", "-m", "tandem.cli", "recipe", str(SAXS_DECK)]
    command += ["--set", "sds=20mg/ml", "--balance", "water", "--volume-ul", "1000"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "Recipe:" in done.stdout
    assert "HiGHS" not in done.stdout + done.stderr


def _output_of(program: str) -> tuple[str, str]:
    """What a fresh interpreter running `program` prints on stdout and on stderr."""
    command = [sys.executable, "-P", "-c", program]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


def test_importing_the_solver_prints_nothing() -> None:
    program = (
        "import tandem.robots.milp as m; "
        "print(m.solve_program([1.0], [[1.0]], [1.0], [2.0], lower=[0.0], upper=[5.0]).status)"
    )
    assert _output_of(program) == ("optimal\n", "")


def test_the_analysis_with_logging_on_prints_nothing_of_pyfai() -> None:
    """pyFAI's silx warns that OpenCL is missing as it is imported; tandem never asks for OpenCL."""
    program = (
        "import logging; logging.basicConfig(level=logging.WARNING); "
        "import tandem.analysis.pipeline; print('imported')"
    )
    assert _output_of(program) == ("imported\n", "")
