"""The digital twin (`tandem.sim`).

Ground-truth physics of a formulation system, simulated robot and detector
backends, the virtual clock, and caproto IOCs that serve the process variables
of simulated hardware. Only tests, profiles and the CLI's wiring import this
package: real code paths never depend on the twin.
"""
