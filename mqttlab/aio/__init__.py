"""A small asyncio MQTT 3.1.1/5 client for high-volume work (fleets, benchmarks, recorder, replay, rules).

Kept apart from ``mqttlab.fleet`` so the services process can use it without loading the fleet's
benchmark and notebook code.
"""
