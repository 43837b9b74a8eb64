"""``python -m service.bench``: the same as ``deleverage bench``."""

from .command import bench

bench(prog_name="python -m service.bench")
