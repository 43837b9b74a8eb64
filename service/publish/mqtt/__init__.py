"""MQTT output (optional): retained scores per instrument, asset and market, QoS 1 alerts and
an ``online``/``offline`` status with a last will. Topics: :mod:`.topics`; ``docs/mqtt.md``."""

from __future__ import annotations

from ...config import MqttSettings
from .publisher import MqttPublisher, ScoreSource
from .topics import Topics

__all__ = ["MqttPublisher", "MqttSettings", "ScoreSource", "Topics"]
