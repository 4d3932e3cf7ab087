"""The InfluxDB sink's part of the configuration: the target its settings describe."""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

_SECRET_IN_QUERY = re.compile(r"([?&](?:p|password|token)=)[^&#\s\"']*", re.IGNORECASE)
_SECRET_IN_USERINFO = re.compile(r"(://[^/@:\s]*:)[^/@\s]*@")
_SECRET_IN_HEADER = re.compile(r"(authorization\W+(?:basic|token|bearer)\s+)\S+", re.IGNORECASE)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with the value of every p=, password= and token= query parameter, the password of a URL's
    user-info and the credentials of an Authorization header replaced by ***: by position, so a user name equal
    to the password stays readable. Each of `secrets` (`InfluxTarget.secrets`) is also replaced wherever it
    appears, plain or URL-quoted: a peer's error text may echo a request in any form."""
    text = _SECRET_IN_USERINFO.sub(r"\1***@", _SECRET_IN_HEADER.sub(r"\1***", _SECRET_IN_QUERY.sub(r"\1***", text)))
    for secret in secrets:
        for form in {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}:
            text = text.replace(form, "***")
    return text


@dataclass(frozen=True)
class InfluxTarget:
    """Where and how to write. `server` is a host name, `host:port` or a URL (scheme, port, path); `port`
    applies when the server names none."""

    server: str
    port: int = 8086
    db: str | None = None
    user: str | None = None
    password: str | None = None
    org: str | None = None
    bucket: str | None = None
    token: str | None = None
    api: str | None = None  # --influxapi: a write path appended to the server's URL as given
    verify_tls: bool = True
    ca_file: str | None = None  # a private CA's certificate(s), PEM

    def _parts(self) -> urllib.parse.SplitResult:
        """`server` split as a URL; a bare name or HOST:PORT is read as http://."""
        return urllib.parse.urlsplit(self.server if "://" in self.server else f"http://{self.server}")

    @property
    def base(self) -> str:
        """scheme://host:port[/path] of the server, without a trailing slash. Raises ValueError for a port
        that is not a number."""
        parts = self._parts()
        # Like the C program: no scheme, or an unknown one, means http.
        scheme = parts.scheme if parts.scheme in ("http", "https") else "http"
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"  # an IPv6 address
        return f"{scheme}://{host}:{parts.port or self.port}{parts.path.rstrip('/')}"

    @property
    def kind(self) -> str:
        if self.api:
            return "custom"
        return "v2" if (self.org or self.bucket or self.token) else "v1"

    def url(self) -> str:
        if self.api:
            return self.base + ("" if self.api.startswith("/") else "/") + self.api
        if self.kind == "v2":
            return f"{self.base}/api/v2/write?" + urllib.parse.urlencode({"org": self.org, "bucket": self.bucket})
        return f"{self.base}/write?" + urllib.parse.urlencode({"db": self.db})

    def headers(self) -> dict[str, str]:
        """Credentials travel in the Authorization header, never in the URL that proxies and logs record."""
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.kind == "v2":
            headers["Authorization"] = f"Token {self.token}"
        else:
            user, password = self.credentials
            if user or password:
                pair = f"{user or ''}:{password or ''}".encode()
                headers["authorization"] = "Basic " + base64.b64encode(pair).decode()
        return headers

    @property
    def credentials(self) -> tuple[str | None, str | None]:
        """User and password: the options, else the user-info of a `--server` URL (never logged: `base` drops it)."""
        parts = self._parts()
        user = urllib.parse.unquote(parts.username) if parts.username else None
        password = urllib.parse.unquote(parts.password) if parts.password else None
        return self.user or user, self.password or password

    @property
    def secrets(self) -> list[str]:
        """What must never be shown: the password, the token and the Authorization value they make."""
        password = self.credentials[1]
        auth = self.headers().get("authorization", "").removeprefix("Basic ")
        return [secret for secret in (password, self.token, auth) if secret]
