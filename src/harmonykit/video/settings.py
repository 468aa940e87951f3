"""Defaults of the video harmonizer (no heavy imports: the command line reads them for
``--help`` before, and without, PyTorch)."""

#: decay of the temporal EMAs (0.8: a time constant of about 5 frames)
DEFAULT_SMOOTHING = 0.8
#: colour-histogram distance of consecutive frames above which a scene cut resets smoothing
DEFAULT_CUT_THRESHOLD = 0.3
