"""MQTT: the state of every module and stack as retained JSON, through a spooled queue, and Home Assistant
discovery (paho-mqtt, the optional `[mqtt]` extra, imported only when a broker is configured)."""
