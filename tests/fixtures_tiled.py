"""Fixtures that start a real Tiled server for a test and stop it afterwards."""
