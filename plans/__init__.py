"""Bluesky plans (`tandem.plans`).

Prepare a sample, load it into the cell, measure transmission, empty cell and
scattering, rinse, and the composite sample plan an agent queues. Every plan
is a generator with typed, JSON-serialisable arguments, ready for the queue
server.
"""
