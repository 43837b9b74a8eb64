"""The live stream (``GET /v1/stream``): the hub that reads Redis once per process
(:mod:`.hub`), the events it sends (:mod:`.events`) and one client's response
(:mod:`.response`)."""
