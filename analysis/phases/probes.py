"""One map from two probes: phases found at each station matched through the sites both measured.

X-rays and neutrons see one structure through different contrast, so their curves of a
phase need not look alike, and each probe's phases are found from its own curves.
They are matched where both probes measured the same or nearby compositions (*sites*:
pairs of runs within `site_radius` of each other in composition, weighted by how close):
a phase of one probe
and a phase of the reference probe (the one that sees most, neutrons) that share
their sites one-to-one are one phase, and the agents are told one name for it.

A phase of the other probe whose sites fall in two or more reference phases spans a
boundary only the reference probe sees (in the twin's default system, PPG is
invisible to X-rays, so the polymer-solution / polymer-cluster boundary is
neutron-only): it keeps a name of its own, reported by that probe alone, and the
multi-probe agent knows that such a label tells nothing about the reference map
until the reference probe has looked there. A phase with no shared site yet keeps
its own name too. A match made or broken later is an event (``match`` /
``unmatch``) like any other change of a run's name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: a reference phase counts as a partner when it holds at least this share of a phase's shared sites
PARTNER_SHARE = 0.25
#: ... and at least this much weight (one site at the same composition weighs 1)
MIN_PARTNER_WEIGHT = 0.5


def shared_sites(
    reference: Mapping[str, FloatArray], other: Mapping[str, FloatArray], radius: float
) -> list[tuple[str, str, float]]:
    """Pairs (reference run, other run, weight) whose compositions lie within `radius` of each other.

    The weight falls linearly from 1 (the same composition) to 0 at `radius` (Euclidean, in the
    units the vectors are given in): the two probes rarely measure exactly the same composition,
    and a nearby one says nearly as much about which phases are one.
    """
    if not reference or not other or radius <= 0:
        return []
    ref_ids = list(reference)
    ref = np.stack([reference[u] for u in ref_ids])
    pairs: list[tuple[str, str, float]] = []
    for uid, x in other.items():
        distance = np.sqrt(np.sum((ref - x[None, :]) ** 2, axis=1))
        for i in np.nonzero(distance < radius)[0]:
            pairs.append((ref_ids[i], uid, float(1.0 - distance[i] / radius)))
    return pairs


def _partners(weights: Mapping[str, float]) -> set[str]:
    total = sum(weights.values())
    return {name for name, w in weights.items() if w >= max(MIN_PARTNER_WEIGHT, PARTNER_SHARE * total)}


def match_phases(
    reference_labels: Mapping[str, str],
    other_labels: Mapping[str, str],
    sites: Sequence[tuple[str, str, float]],
) -> dict[str, str]:
    """The other probe's phases that are one reference phase: other name → reference name."""
    forward: dict[str, dict[str, float]] = {}
    backward: dict[str, dict[str, float]] = {}
    for ref_uid, other_uid, weight in sites:
        ref_name = reference_labels.get(ref_uid)
        other_name = other_labels.get(other_uid)
        if ref_name is None or other_name is None:
            continue
        row = forward.setdefault(other_name, {})
        row[ref_name] = row.get(ref_name, 0.0) + weight
        column = backward.setdefault(ref_name, {})
        column[other_name] = column.get(other_name, 0.0) + weight
    matched: dict[str, str] = {}
    for other_name, counts in forward.items():
        partners = _partners(counts)
        if len(partners) != 1:
            continue  # no clear partner, or a phase that spans a boundary only the reference probe sees
        (ref_name,) = partners
        if _partners(backward[ref_name]) == {other_name}:
            matched[other_name] = ref_name
    return matched
