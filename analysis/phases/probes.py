"""One map from two probes: phases found at each station matched through the sites both measured.

X-rays and neutrons see one structure through different contrast, so their curves of a
phase need not look alike, and each probe's phases are found from its own curves.
They are matched where both probes measured the same composition (a *site*: runs
whose compositions agree within `site_tolerance` mass fraction): a phase of one probe
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

from collections import Counter
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: a reference phase counts as a partner when it holds at least this share of a phase's shared sites
PARTNER_SHARE = 0.25


def shared_sites(
    reference: Mapping[str, FloatArray], other: Mapping[str, FloatArray], tolerance: float
) -> list[tuple[str, str]]:
    """Pairs (reference run, other run) whose compositions agree within `tolerance` (max abs difference)."""
    if not reference or not other:
        return []
    ref_ids = list(reference)
    ref = np.stack([reference[u] for u in ref_ids])
    pairs: list[tuple[str, str]] = []
    for uid, x in other.items():
        close = np.max(np.abs(ref - x[None, :]), axis=1) <= tolerance
        pairs.extend((ref_ids[i], uid) for i in np.nonzero(close)[0])
    return pairs


def _partners(counts: Counter[str]) -> set[str]:
    total = sum(counts.values())
    return {name for name, n in counts.items() if n >= max(1.0, PARTNER_SHARE * total)}


def match_phases(
    reference_labels: Mapping[str, str], other_labels: Mapping[str, str], sites: list[tuple[str, str]]
) -> dict[str, str]:
    """The other probe's phases that are one reference phase: other name → reference name."""
    forward: dict[str, Counter[str]] = {}
    backward: dict[str, Counter[str]] = {}
    for ref_uid, other_uid in sites:
        ref_name = reference_labels.get(ref_uid)
        other_name = other_labels.get(other_uid)
        if ref_name is None or other_name is None:
            continue
        forward.setdefault(other_name, Counter())[ref_name] += 1
        backward.setdefault(ref_name, Counter())[other_name] += 1
    matched: dict[str, str] = {}
    for other_name, counts in forward.items():
        partners = _partners(counts)
        if len(partners) != 1:
            continue  # no clear partner, or a phase that spans a boundary only the reference probe sees
        (ref_name,) = partners
        if _partners(backward[ref_name]) == {other_name}:
            matched[other_name] = ref_name
    return matched
