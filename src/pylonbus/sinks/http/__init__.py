"""HTTP: Prometheus metrics, the live page, the JSON state and a health check, served from the last reading."""
