"""The mqttlab services process (twins, rules, recorder, HTTP API, metrics). No Jupyter imports here."""
