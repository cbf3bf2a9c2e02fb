"""Fixtures that start caproto IOCs on loopback and point pyepics at them."""
