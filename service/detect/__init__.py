"""Deleveraging pressure: rolling windows and scores per instrument, asset and market.

Build the model with :func:`service.detect.factory.make_model` (not re-exported here: the
configuration imports :mod:`.model`, and a re-export would import the configuration back).
"""
