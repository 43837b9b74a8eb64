"""Deribit's loopback server (:mod:`.server`), its pure wire encoder (:mod:`.wire`), REST
(:mod:`.rest`) and recorded data (``data/``). It never imports the venue's parser."""
