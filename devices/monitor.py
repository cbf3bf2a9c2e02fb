"""The transmission monitor: incident-beam monitor and beam-stop diode, gated by the detector.

Both counters count while the detector exposes (as a scaler gated by the
detector does), so a reading after a detector trigger belongs to that exposure.
Transmission is (transmitted / incident) with the sample over the same ratio
with the empty cell; the run records the raw counts and analysis forms the ratio.
"""

from __future__ import annotations

from ophyd import Component as Cpt
from ophyd import Device, EpicsSignalRO

from tandem.devices.signals import SoftSignal


class TransmissionMonitor(Device):
    incident_counts = Cpt(SoftSignal, value=0.0, kind="hinted")
    transmitted_counts = Cpt(SoftSignal, value=0.0, kind="hinted")
    #: exposure the counts were gated by, so that a reading can be normalised on its own
    count_time_s = Cpt(SoftSignal, value=0.0, kind="normal")


class EpicsTransmissionMonitor(TransmissionMonitor):
    incident_counts = Cpt(EpicsSignalRO, "I0_RBV", kind="hinted")
    transmitted_counts = Cpt(EpicsSignalRO, "IT_RBV", kind="hinted")
    count_time_s = Cpt(EpicsSignalRO, "CountTime_RBV", kind="normal")
