"""MQTT: the state of every module and stack as retained JSON, through a spooled queue, and Home Assistant
discovery, over a client of its own (MQTT 5: `packets`, `client`), imported only when a broker is configured."""
