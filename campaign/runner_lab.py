"""Which lab a campaign runs in: the digital twin, or real stations on EPICS; never both at once.

A station runs on the twin unless its instrument profile says `backend: epics`
(`tandem.campaign.config.profiles.on_twin`). A campaign whose stations are all on
the twin runs in `tandem.campaign.rig.twin_lab` (virtual clocks, the discrete-event
loop); one whose stations are all real runs in `tandem.campaign.epics_lab.epics_lab`
(wall clocks). A campaign that mixes them is refused before anything starts: the
twin's station time is virtual and a real station's is the wall's, and a loop that
ordered samples by both would let the twin's stations run hours ahead of the
beamline's. The twin is imported only for a twin campaign, so a real lab's process
loads no line of `tandem.sim`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from tandem.campaign.config import Campaign
from tandem.campaign.config.profiles import on_twin
from tandem.campaign.epics_lab import epics_lab
from tandem.campaign.runner_resume import CampaignRunError
from tandem.campaign.station_rig import Lab
from tandem.document_queue import DocumentCallback
from tandem.store_guard import StopSignal


class MixedStationsError(CampaignRunError):
    """A campaign with stations on the twin and real (EPICS) stations at once."""


def on_real_stations(campaign: Campaign) -> bool:
    """Whether every station of `campaign` is a real one (EPICS); a mix is refused (`MixedStationsError`)."""
    twin = [sid for sid, s in campaign.stations.items() if on_twin(s.instrument)]
    real = [sid for sid in campaign.stations if sid not in twin]
    if twin and real:
        raise MixedStationsError(
            f"campaign {campaign.id!r} mixes stations on the digital twin ({', '.join(twin)}) with EPICS "
            f"stations ({', '.join(real)}); their clocks cannot be compared (virtual and wall time). "
            "Run them as two campaigns, or give every station a profile with the same backend"
        )
    return bool(real)


@contextlib.contextmanager
def open_lab(
    campaign: Campaign,
    directory: Path,
    *,
    stop_requested: StopSignal,
    wrap_writer: Callable[[DocumentCallback], DocumentCallback] | None = None,
) -> Iterator[Lab]:
    """The lab of `campaign`, its runs written to Tiled under `directory` from a thread per station."""
    if on_real_stations(campaign):
        with epics_lab(
            campaign,
            directory,
            background_writer=True,
            stop_requested=stop_requested,
            wrap_writer=wrap_writer,
        ) as lab:
            yield lab
        return
    # the twin only for a campaign on it: a real lab's process never imports it
    from tandem.campaign.rig import twin_lab

    with twin_lab(
        campaign,
        directory,
        background_writer=True,
        stop_requested=stop_requested,
        wrap_writer=wrap_writer,
    ) as twin:
        yield twin


__all__ = ["MixedStationsError", "on_real_stations", "open_lab"]
