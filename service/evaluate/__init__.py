"""``deleverage evaluate``: the labelled scenario suite played through the detector.

:mod:`.wire` plays each venue's wire without sockets (the simulators' encoders into the real
parsers), :mod:`.play` runs one scenario through a model, :mod:`.matching` defines how a
detection is matched to a label, :mod:`.report` sums the figures, :mod:`.suite` runs every
kind for every seed.
"""
