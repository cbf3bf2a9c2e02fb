"""PNG renderings of frames and of the phase diagram."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from tandem.sim.detector_image import simulate_frame
from tandem.sim.instruments import SANS_INSTRUMENT, SAXS_INSTRUMENT
from tandem.sim.plots import PHASE_COLOURS, plot_frames, plot_phase_diagram
from tandem.sim.systems import default_system


def test_frames_render_to_png(tmp_path: Path) -> None:
    composition = {"SDS": 0.145}
    rng = np.random.default_rng(0)
    frames = [
        simulate_frame(SAXS_INSTRUMENT, None, composition, default_system(composition, "xray"), 1.0, rng),
        simulate_frame(SANS_INSTRUMENT, None, composition, default_system(composition, "neutron"), 60.0, rng),
    ]
    path = plot_frames(frames, tmp_path / "out" / "frames.png")
    image = imread(path)
    assert image.shape[1] > image.shape[0] > 100  # two panels side by side


def test_phase_diagram_shows_every_phase_colour(tmp_path: Path) -> None:
    path = plot_phase_diagram(tmp_path / "phases.png", salt_fractions=(0.0, 0.03), resolution=80)
    pixels = (imread(path)[..., :3] * 255).round().astype(int).reshape(-1, 3)
    present = {tuple(p) for p in np.unique(pixels, axis=0)}
    for colour in PHASE_COLOURS:
        rgb = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
        assert rgb in present, f"phase colour {colour} missing from the diagram"


def test_no_frames_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        plot_frames([], tmp_path / "x.png")
