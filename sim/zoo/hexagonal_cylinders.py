r"""A sasmodels plugin model: long cylinders on a 2-D hexagonal paracrystal (an H1 mesophase).

sasmodels 1.1 ships cubic paracrystals (sc, bcc, fcc) but no hexagonal one.
This file is a sasmodels model loaded by path (`HEXAGONAL_MODEL` in
`tandem.sim.zoo.mesophases` is its file name), not a module tandem imports.

.. math::

    I(q) = \text{scale}\,\frac{10^{-4}\,\Delta\rho^2 V\,P_\text{rod}(qL)\,F^2(qR)\,Z(q)}{1}
           + \text{background}

with :math:`V = \pi R^2 L`, the thin-rod factor
:math:`P_\text{rod}(x) = 2\,\mathrm{Si}(x)/x - 4\sin^2(x/2)/x^2` (orientation
average), the cross-section :math:`F(qR) = 2 J_1(qR)/(qR)`, and the powder
average of the 2-D hexagonal lattice (lattice constant *dnn*, cell area
:math:`\sqrt{3}\,a^2/2`) with Debye-Waller damping
:math:`G = \exp(-(g\,a\,q)^2)`, *g* = *d_factor*:

.. math::

    Z(q) = 1 - G + G\,\frac{2\pi}{A_\text{cell}\,q}\sum_{hk} m_{hk}\,
           \mathcal{N}(q - q_{hk};\ 2\pi/D)

where :math:`q_{hk} = \frac{4\pi}{\sqrt{3}a}\sqrt{h^2 + hk + k^2}` (peaks at
1 : √3 : 2 : √7 : 3), :math:`m_{hk}` their multiplicities and
:math:`\mathcal{N}` a unit-area Gaussian whose width is set by the domain size
*D*. *scale* is the fraction of the sample that is hexagonal; the cylinders'
volume fraction follows from *radius* and *dnn*.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy import inf
from scipy.special import j1, sici

name = "hexagonal_cylinders"
title = "Long cylinders on a hexagonal paracrystal (H1 mesophase)"
description = "Orientation-averaged long cylinders times the powder-averaged hexagonal lattice factor."
category = "shape:cylinder"

# ["name", "units", default, [lower, upper], "type", "description"]
parameters = [
    ["radius", "Ang", 20.0, [0, inf], "", "Cylinder radius"],
    ["length", "Ang", 2000.0, [0, inf], "", "Cylinder length"],
    ["dnn", "Ang", 60.0, [0, inf], "", "Nearest-neighbour (lattice) distance"],
    ["d_factor", "", 0.05, [0, inf], "", "Paracrystal distortion factor"],
    ["domain_size", "Ang", 1500.0, [0, inf], "", "Domain size (peak width)"],
    ["sld", "1e-6/Ang^2", 1.0, [-inf, inf], "sld", "Cylinder scattering length density"],
    ["sld_solvent", "1e-6/Ang^2", 6.3, [-inf, inf], "sld", "Medium scattering length density"],
]

#: (h² + hk + k²) and multiplicity of the first reflections of a 2-D hexagonal lattice
_REFLECTIONS = ((1, 6), (3, 6), (4, 6), (7, 12), (9, 6), (12, 6), (13, 12), (16, 6))


def Iq(  # noqa: N802, PLR0917 - sasmodels calls Iq(q, *parameters) by this name
    q: Any,
    radius: float,
    length: float,
    dnn: float,
    d_factor: float,
    domain_size: float,
    sld: float,
    sld_solvent: float,
) -> Any:
    q = np.maximum(np.asarray(q, dtype=np.float64), 1e-8)
    x = q * length
    p_rod = 2.0 * sici(x)[0] / x - 4.0 * np.sin(x / 2.0) ** 2 / x**2
    qr = np.maximum(q * radius, 1e-8)
    cross_section = (2.0 * j1(qr) / qr) ** 2
    cell_area = np.sqrt(3.0) / 2.0 * dnn**2
    width = 2.0 * np.pi / domain_size
    peaks = np.zeros_like(q)
    for n2, multiplicity in _REFLECTIONS:
        q_hk = 4.0 * np.pi / (np.sqrt(3.0) * dnn) * np.sqrt(n2)
        peaks += multiplicity * np.exp(-0.5 * ((q - q_hk) / width) ** 2) / (width * np.sqrt(2.0 * np.pi))
    debye_waller = np.exp(-((d_factor * dnn * q) ** 2))
    lattice = 1.0 - debye_waller + debye_waller * 2.0 * np.pi / (cell_area * q) * peaks
    volume = np.pi * radius**2 * length
    return 1e-4 * (sld - sld_solvent) ** 2 * volume * p_rod * cross_section * lattice


Iq.vectorized = True  # type: ignore[attr-defined]  # sasmodels passes whole q arrays
