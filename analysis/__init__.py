"""Analysis (`tandem.analysis`).

Reduction of 2-D frames to I(q), features (Guinier, Porod, peaks), model fits,
phase labelling across a campaign; reads raw runs from Tiled and writes
analysed results back, with provenance.
"""

import logging

# pyFAI's silx looks for OpenCL as it is imported and warns when it is missing. The integration here
# runs on the CPU and never asks for OpenCL, so that warning was the only line on the stderr of an
# otherwise quiet command (`tandem agent run`, `tandem analyze`, a notebook with logging on). Set
# here because every import of pyFAI in tandem goes through this package.
logging.getLogger("silx.opencl.common").setLevel(logging.ERROR)
