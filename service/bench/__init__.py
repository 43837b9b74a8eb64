"""``deleverage bench``: what the data path costs, printed as JSON (``docs/performance.md``).

Scenarios, one module each: :mod:`.wire` (the service process against a loopback venue,
beside a floor consumer, :mod:`.floor`; frames from :mod:`.frames`, sent by
:mod:`.blaster`), :mod:`.detector` (the pressure model's update and evaluation) and
:mod:`.pipeline` (the path in one process, parse-only and into Redis). The command is in
:mod:`.command`. Nothing here is a test: figures vary with the machine.
"""
