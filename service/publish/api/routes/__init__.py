"""One router per concern: ops (unversioned), venues, pressure and market data (under ``/v1``)."""
