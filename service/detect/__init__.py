"""Deleveraging pressure: rolling windows and scores per instrument."""
