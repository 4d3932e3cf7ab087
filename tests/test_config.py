"""The collector's configuration without the command line: a file, the environment and flags merged by the library,
with the same checks and the same words as pylon2influx."""

from __future__ import annotations

from pathlib import Path

import pytest

from pylonbus.service.config import load
from pylonbus.service.settings import ConfigError, merge, render


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


def test_a_program_loads_a_config_file_with_its_secrets_and_its_own_overrides(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    file = write(
        tmp_path,
        '[battery]\ndevice = "socket://gw.lan:8899"\ngroups = [0, 1]\ninterval = 9\n\n'
        f'[influx]\nserver = "https://db.lan:8443/influx"\norg = "home"\nbucket = "battery"\ntoken_file = "{token}"\n'
        '\n[mqtt]\nurl = "mqtt://me@broker.lan"\n\n[http]\nlisten = "127.0.0.1:9101"\n',
    )
    config = load(file, environ={"MQTT_PASSWORD": "from-env", "INFLUX_TOKEN": "loses-to-the-file"}, query=3.0)
    assert (config.device, config.groups, config.interval) == ("socket://gw.lan:8899", [0, 1], 3.0)
    assert config.influx is not None and config.influx.kind == "v2" and config.influx.token == "s3cret"
    assert config.influx.url() == "https://db.lan:8443/influx/api/v2/write?org=home&bucket=battery"
    assert config.mqtt is not None and config.mqtt.password == "from-env" and config.mqtt.prefix == "pylontech"
    assert config.http == "127.0.0.1:9101" and config.spooled


def test_defaults_alone_make_the_c_programs_stdout_collector() -> None:
    config = load(environ={})
    assert config.influx is None and config.mqtt is None and not config.spooled
    assert (config.interval, config.rescan, config.schema, config.groups) == (5.0, 60.0, "c", [0])


@pytest.mark.parametrize(
    ("text", "flags", "message"),
    [
        ("[battery]\nbaud = 50\n", {}, "site.toml:2: baud: 50 is out of range (1200-500000)"),
        ('[influx]\nserver = "db.lan"\n', {}, "InfluxDB v1 needs --db"),
        ('[influx]\nserver = "db.lan"\norg = "o"\n', {"token": "t"}, "--bucket is missing"),
        ('[influx]\nserver = "db.lan:x"\ndb = "d"\n', {}, "--server db.lan:x: "),
    ],
)
def test_what_the_command_line_refuses_the_library_refuses_in_the_same_words(
    tmp_path: Path, text: str, flags: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load(write(tmp_path, text), environ={}, **flags)


def test_the_merged_settings_render_as_a_file_that_loads_to_the_same_settings(tmp_path: Path) -> None:
    file = write(
        tmp_path, '[battery]\ngroups = [1, 0]\nfanout = false\n[influx]\nschema = "both"\n[log]\nverbose = 2\n'
    )
    settings = merge(file)
    again = merge(write(tmp_path, render(settings, environ={})))
    assert again == settings and again["groups"] == [1, 0] and again["fanout"] is False
