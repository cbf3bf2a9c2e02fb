"""Analysis (`tandem.analysis`).

Reduction of 2-D frames to I(q), features (Guinier, Porod, peaks), model fits,
phase labelling across a campaign; reads raw runs from Tiled and writes
analysed results back, with provenance.
"""
