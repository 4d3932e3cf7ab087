"""The InfluxDB sink's settings: the `[influx]` table of the config file (also the -s/-n/-B… options). Apart from
`config.InfluxTarget`, so that a program's --help loads no dataclasses."""

from __future__ import annotations

from ...options import Setting, one_of, path, whole

SCHEMAS = ("c", "full", "both")

SETTINGS = (
    Setting("server"),
    Setting("port", default=8086, parse=whole(1, 65535)),
    Setting("db"),
    Setting("user"),
    Setting("bucket"),
    Setting("org"),
    Setting("influxapi"),
    Setting("ca_file", parse=path),
    Setting("verify_tls", "isslverifypeer", default=1, parse=whole(0, 1), flag=True),
    Setting("cache", parse=whole(1, None)),
    Setting("spool", parse=path),
    Setting("all", default=False, flag=True),
    Setting("schema", default="c", parse=one_of(*SCHEMAS)),
    Setting("stdout", default=False, flag=True),  # the line protocol to standard output beside other sinks
    Setting("password_file", parse=path),
    Setting("token_file", parse=path),
)
