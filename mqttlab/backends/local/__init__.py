"""The embedded local stack: a mosquitto process and the mqttlab services process on free ports."""

from ._backend import LocalBackend

__all__ = ["LocalBackend"]
