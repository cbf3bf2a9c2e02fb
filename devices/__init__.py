"""Beamline devices of each station (`tandem.devices`).

The area detector, shutter, transmission monitor, detector configuration
(q-range) and sample-environment temperature controller of a SAXS or SANS
station, each with an EPICS backend and a simulated backend behind one
interface.
"""
