"""The formulation lab (`tandem.robots`).

Mixing math that turns the stocks on a deck into a recipe for a target
composition, the deck and its inventory (stocks, wells, tips), the liquid
handler that executes recipes over a swappable backend, and the cell loader
that pushes a prepared sample into the measurement cell and rinses it.
"""
