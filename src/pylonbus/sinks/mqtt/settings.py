"""The MQTT sink's settings: the `[mqtt]` table of the config file and the --mqtt options, each checked when it
is read (a topic prefix the broker would refuse must never reach the spool). Apart from `config.MqttConfig`, so
that a program's --help loads no dataclasses."""

from __future__ import annotations

import unicodedata
import urllib.parse

from ...options import BadValue, Setting, path

DEFAULT_PREFIX = "pylontech"
URL_FORM = "give mqtt://[USER@]HOST[:PORT] (mqtts:// for TLS)"


def topic_problem(topic: str) -> str | None:
    """Why MQTT does not allow `topic` as the name a message is published to; None if it does."""
    if not topic:
        return "is empty"
    if "#" in topic or "+" in topic:
        return "holds a wildcard (# or +), which only a subscription may"
    control = next((char for char in topic if unicodedata.category(char) == "Cc"), None)
    if control is not None:  # NUL is malformed to the broker, which drops the connection; MQTT advises against all
        return f"holds a control character ({control!r})"
    try:
        topic.encode("utf-8")
    except UnicodeEncodeError:  # bytes that were not UTF-8, as Python keeps them from argv (surrogates)
        return "is not valid UTF-8"
    return None


def topic_prefix(text: str) -> str:
    """A prefix every topic published starts with."""
    problem = topic_problem(text)
    if problem is None and text.startswith("$"):
        problem = "starts with $, which the broker keeps for itself ($SYS) and # subscriptions do not see"
    if problem:
        raise BadValue(f"{text!r} {problem}; give letters, digits and / such as pylontech or home/battery")
    return text


def broker(url: str) -> tuple[str, int, bool, str | None]:
    """(host, port, tls, user) of `mqtt://[USER@]HOST[:PORT]` or `mqtts://…`. Raises BadValue."""
    parts = urllib.parse.urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise BadValue(f"{url}: {URL_FORM}")
    if parts.password is not None:
        raise BadValue(f"{url}: no password in the URL; use MQTT_PASSWORD or --mqtt-password-file")
    try:
        port = parts.port
    except ValueError:
        port = 0  # not a number, or beyond 65535
    if port is None:
        port = 8883 if parts.scheme == "mqtts" else 1883
    elif port == 0:  # urlsplit reads `:0` and `:99999` alike as no port; neither is one a broker listens on
        raise BadValue(f"{url}: the port must be a number 1-65535 (or none: 1883, 8883 for mqtts://)")
    return parts.hostname, port, parts.scheme == "mqtts", parts.username


def broker_url(text: str) -> str:
    broker(text)
    return text


SETTINGS = (
    Setting("url", "mqtt", parse=broker_url),
    Setting("prefix", "mqtt_prefix", default=DEFAULT_PREFIX, parse=topic_prefix),
    Setting("ha_prefix", default="homeassistant", parse=topic_prefix),
    Setting("ha_discovery", default=True, flag=True),
    Setting("ha_cleanup", default=False, flag=True),
    Setting("password_file", "mqtt_password_file", parse=path),
)
