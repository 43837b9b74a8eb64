"""Binance's loopback servers (:mod:`.usdm`, :mod:`.coinm`), their pure wire encoders
(:mod:`.usdm_wire`, :mod:`.coinm_wire`), REST (:mod:`.usdm_rest`) and recorded data
(``data/``). They never import the venue's parser."""
