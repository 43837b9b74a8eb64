"""Deleveraging pressure: rolling windows and scores per instrument, asset and market.

Build the model with :func:`service.detect.factory.make_model`. What the detector outputs
(scores, states, transitions) is :mod:`service.scores`, below the store that keeps it.
"""
