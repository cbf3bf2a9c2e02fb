"""Shared fixtures live in `fixtures_*.py` plugin modules, one per real service."""

pytest_plugins = ["fixtures_deck", "fixtures_epics", "fixtures_stations", "fixtures_tiled"]
