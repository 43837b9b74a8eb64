"""``deleverage backtest``: the detector over historical bars (CSV or Parquet).

:mod:`.bars` reads and merges the files, :mod:`.replay` turns bars into events in scaled
model time and collects the state intervals, :mod:`.command` prints and writes them.
"""
