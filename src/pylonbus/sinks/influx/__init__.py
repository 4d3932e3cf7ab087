"""InfluxDB (v1, v2 or any line-protocol endpoint): the line protocol of both schemas, the spooled queue and the
shipper thread that drains it through the HTTP writer; and the same lines on standard output, which is what the C
program printed without a server."""
