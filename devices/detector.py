"""The 2-D area detector of a station, and the geometry it records with every frame.

`AreaDetector` is the interface and its behaviour: components are soft signals
(the simulated backend drives them); `EpicsAreaDetector` overrides them with
areaDetector-style PVs. Either way a trigger starts one exposure and finishes
when the frame counter moves on, fails at once if the detector reports its error
state, and fails with `DeviceTimeoutError` if the detector stops answering.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device, EpicsSignal, EpicsSignalRO
from ophyd.areadetector.base import EpicsSignalWithRBV
from ophyd.status import Status

from tandem.devices.signals import ImageSignal, SoftImageSignal, SoftSignal, wait_until
from tandem.geometry import DetectorGeometry


class DetectorState(IntEnum):
    """Values of `detector_state` (a subset of areaDetector's DetectorState_RBV)."""

    IDLE = 0
    ACQUIRE = 1
    ERROR = 2


class AreaDetector(Device):
    """One exposure per trigger: an image, the exposure time and the geometry that reduces it.

    `readout_timeout_s` is how long after the nominal exposure the detector may
    take to deliver the frame before it is considered gone.
    """

    exposure_time = Cpt(SoftSignal, value=1.0, kind="config")
    acquire = Cpt(SoftSignal, value=0, kind="omitted")
    detector_state = Cpt(SoftSignal, value=int(DetectorState.IDLE), kind="omitted")
    status_message = Cpt(SoftSignal, value="", kind="omitted")
    array_counter = Cpt(SoftSignal, value=0, kind="normal")
    image = Cpt(SoftImageSignal, value=np.zeros((1, 1), dtype=np.int32), kind="normal")

    n_pixels_x = Cpt(SoftSignal, value=1, kind="config")
    n_pixels_y = Cpt(SoftSignal, value=1, kind="config")
    pixel_size_mm = Cpt(SoftSignal, value=1.0, kind="config")
    beam_center_x_px = Cpt(SoftSignal, value=0.5, kind="config")
    beam_center_y_px = Cpt(SoftSignal, value=0.5, kind="config")
    distance_mm = Cpt(SoftSignal, value=1000.0, kind="config")
    wavelength_a = Cpt(SoftSignal, value=1.0, kind="config")
    wavelength_spread = Cpt(SoftSignal, value=1e-4, kind="config")
    beamstop_radius_mm = Cpt(SoftSignal, value=0.0, kind="config")

    def __init__(self, *args: Any, readout_timeout_s: float = 30.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.readout_timeout_s = readout_timeout_s

    @property
    def exposure_range_s(self) -> tuple[float, float]:
        low, high = self.exposure_time.limits
        return (float(low), float(high))

    def geometry(self) -> DetectorGeometry:
        """The geometry the next frame is taken with, read from the detector."""
        return DetectorGeometry(
            n_pixels_x=int(self.n_pixels_x.get()),
            n_pixels_y=int(self.n_pixels_y.get()),
            pixel_size_mm=float(self.pixel_size_mm.get()),
            distance_mm=float(self.distance_mm.get()),
            beam_center_x_px=float(self.beam_center_x_px.get()),
            beam_center_y_px=float(self.beam_center_y_px.get()),
            wavelength_a=float(self.wavelength_a.get()),
            beamstop_radius_mm=float(self.beamstop_radius_mm.get()),
            wavelength_spread=float(self.wavelength_spread.get()),
        )

    def trigger(self) -> Status:
        # The frame counter, not the busy flag, marks completion: a short exposure
        # may start and end before a subscription to the busy flag would see it.
        start = int(self.array_counter.get())
        timeout_s = float(self.exposure_time.get()) + self.readout_timeout_s
        status = wait_until(
            self.array_counter,
            lambda count: int(count) > start,
            timeout_s=timeout_s,
            what=f"{self.name}: exposure of {self.exposure_time.get():g} s",
            fault=self._fault_message,
            fault_signal=self.detector_state,
        )
        self.acquire.put(1)
        return status

    def _fault_message(self, state: Any) -> str | None:
        if int(state) == DetectorState.ERROR:
            return str(self.status_message.get()) or "the detector reports an error"
        return None


class EpicsAreaDetector(AreaDetector):
    """The area detector over Channel Access (areaDetector-style PV names under a prefix)."""

    exposure_time = Cpt(EpicsSignalWithRBV, "AcquireTime", kind="config")
    acquire = Cpt(EpicsSignal, "Acquire", kind="omitted")
    detector_state = Cpt(EpicsSignalRO, "DetectorState_RBV", kind="omitted")
    status_message = Cpt(EpicsSignalRO, "StatusMessage_RBV", string=True, kind="omitted")
    array_counter = Cpt(EpicsSignalRO, "ArrayCounter_RBV", kind="normal")
    image = Cpt(ImageSignal, "image1:ArrayData", kind="normal")

    n_pixels_x = Cpt(EpicsSignalRO, "ArraySizeX_RBV", kind="config")
    n_pixels_y = Cpt(EpicsSignalRO, "ArraySizeY_RBV", kind="config")
    pixel_size_mm = Cpt(EpicsSignalRO, "PixelSize_RBV", kind="config")
    beam_center_x_px = Cpt(EpicsSignalRO, "BeamX_RBV", kind="config")
    beam_center_y_px = Cpt(EpicsSignalRO, "BeamY_RBV", kind="config")
    distance_mm = Cpt(EpicsSignalRO, "DetDist_RBV", kind="config")
    wavelength_a = Cpt(EpicsSignalRO, "Wavelength_RBV", kind="config")
    wavelength_spread = Cpt(EpicsSignalRO, "WavelengthSpread_RBV", kind="config")
    beamstop_radius_mm = Cpt(EpicsSignalRO, "BeamStopRadius_RBV", kind="config")
