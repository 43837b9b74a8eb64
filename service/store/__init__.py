"""Redis: the hand-off between collectors, detector and API, and the latest state."""
