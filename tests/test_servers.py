"""The test servers' fixtures: ports free at run time, and a server answering on a port proven to be ours."""

from __future__ import annotations

import http.server
import subprocess
import threading

import pytest

import servers


def test_each_port_is_free_and_handed_out_once() -> None:
    ports = [servers.free_port() for _ in range(20)]
    assert len(set(ports)) == len(ports)
    assert servers.INFLUX_PORT not in ports and servers.MQTT_TLS_PORT not in ports


def test_another_server_on_the_port_is_not_taken_for_ours() -> None:
    """What a second influxd on the machine did: it answered the readiness check, and the tests wrote to it."""
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    ours = subprocess.Popen(["sleep", "30"])
    try:
        with pytest.raises(RuntimeError, match="not the server started here"):
            servers.wait_http(f"http://127.0.0.1:{other.server_address[1]}/", ours, seconds=5)
    finally:
        other.shutdown()
        other.server_close()
        ours.kill()
        ours.wait()


def test_the_process_listening_on_a_port_is_found() -> None:
    listener = subprocess.Popen(
        [
            "python3",
            "-c",
            "import socket,sys,time; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen();"
            " print(s.getsockname()[1], flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert listener.stdout is not None
        port = int(listener.stdout.readline())
        assert servers.listener_pid(port) == listener.pid
        servers.prove_ours(port, listener)
    finally:
        listener.kill()
        listener.wait()
        if listener.stdout:
            listener.stdout.close()
