"""What is in the cell: the sample record a beamline keeps next to its detector.

The sample plan writes the sample uid and its realized composition (JSON mass
fractions) after loading the cell and clears them after rinsing. Real hardware
only records them; the digital twin reads them to know what it is looking at.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ophyd import Component as Cpt
from ophyd import Device, EpicsSignal
from ophyd.status import Status

from tandem.devices.signals import SoftSignal


class SampleInfo(Device):
    uid = Cpt(SoftSignal, value="", kind="config")
    composition = Cpt(SoftSignal, value="", kind="config")

    def set(self, value: Mapping[str, Any] | None) -> Status:
        """`{"uid": ..., "mass_fractions": {...}}` records a sample; None records the empty cell."""
        if value is None:
            uid, text = "", ""
        else:
            uid = str(value["uid"])
            text = json.dumps({str(k): float(v) for k, v in value["mass_fractions"].items()})
        self.composition.put(text)
        self.uid.put(uid)
        status = Status(obj=self)
        status.set_finished()
        return status


class EpicsSampleInfo(SampleInfo):
    uid = Cpt(EpicsSignal, "Uid", string=True, kind="config")
    composition = Cpt(EpicsSignal, "Composition", string=True, kind="config")
