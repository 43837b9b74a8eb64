"""Connections to the venues: websocket sessions, REST polls, metadata; shared by all venues."""
