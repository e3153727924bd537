"""Test helpers: the pytest plugin (fixtures ``lab``, ``fresh_lab``, ``topic_ns``, ``make_device``) and waits."""

from ._collect import MessageCollector, Subscription, subscribe_and_wait

__all__ = ["MessageCollector", "Subscription", "subscribe_and_wait"]
