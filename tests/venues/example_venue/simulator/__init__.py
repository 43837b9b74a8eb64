"""The example venue's loopback server (:mod:`.server`) and its pure encoder (:mod:`.wire`):
they import nothing of the example's parser."""
