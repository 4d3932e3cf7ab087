#!/bin/sh
# Install pylonbus on a Victron GX device (Venus OS 3.60 or later: Python 3.12) into /data, which survives
# firmware updates, and start pylon2influx as a service at every boot.
#   sh setup.sh            install or update
#   sh setup.sh uninstall  stop the service and remove everything but the configuration and the log
set -eu
BASE=/data/pylonbus
SERVICE=/service/pylon2influx
CONFIG=/data/pylon2influx.toml
RC=/data/rc.local
HERE=$(cd "$(dirname "$0")" && pwd)

if [ "${1:-}" = "uninstall" ]; then
    svc -d "$SERVICE" 2>/dev/null || true
    rm -f "$SERVICE"
    sed -i '/pylonbus/d' "$RC" 2>/dev/null || true
    rm -rf "$BASE"
    echo "pylonbus removed; $CONFIG and /data/log/pylon2influx are kept"
    exit 0
fi

# pylonbus is not on the package index yet: the wheel copied beside this script (python -m build --wheel in a
# clone), or PYLONBUS_SOURCE (a wheel, an sdist or a directory).
source=${PYLONBUS_SOURCE:-}
if [ -z "$source" ]; then
    for wheel in "$HERE"/pylonbus-*.whl; do
        [ -f "$wheel" ] && source=$wheel
    done
fi
if [ -z "$source" ]; then
    echo "setup.sh: no pylonbus wheel beside $0: build one in a clone (python -m build --wheel) and copy dist/*.whl here" >&2
    exit 1
fi
mkdir -p "$BASE" /data/log/pylon2influx
python3 -m venv "$BASE/venv"
# pyserial is pure Python and orjson comes as a wheel for the GX (armv7l): no compiler is needed.
"$BASE/venv/bin/pip" install --upgrade --quiet "${source}"
rm -rf "$BASE/service"
cp -r "$HERE" "$BASE/service"
chmod +x "$BASE/service/run" "$BASE/service/log/run"
cp "$HERE/setup.sh" "$BASE/setup.sh"

if [ ! -f "$CONFIG" ]; then
    cat > "$CONFIG" <<'TOML'
# pylon2influx on this GX device; see https://github.com/pylonbus/pylonbus for every key.
# The service runs: pylon2influx --config /data/pylon2influx.toml -d auto
# After a change: svc -t /service/pylon2influx

[battery]
baud = 115200                    # the modules' DIP switch 1: down 115200, up 9600
groups = [0]
interval = 5
# auto_ports = "/dev/serial/by-id/*:/dev/ttyUSB*:/dev/ttyACM*"

# [influx]
# server = "http://192.168.1.10:8086"
# db = "battery"                 # InfluxDB 1.x; or org, bucket and token_file for 2.x

# [mqtt]                         # Home Assistant
# url = "mqtt://pylon@192.168.1.20"
# password_file = "/data/pylon2influx-mqtt-password"

# [http]
# listen = "0.0.0.0:9101"        # Prometheus /metrics and the live page

[log]
verbose = 1
TOML
    echo "wrote $CONFIG: set a database, broker or listen address in it"
fi

# /service is rebuilt at every boot: link the service from /data/rc.local.
line="ln -sfn $BASE/service $SERVICE"
touch "$RC"
chmod +x "$RC"
grep -qF "$line" "$RC" || printf '%s\n' "$line # pylonbus" >> "$RC"
ln -sfn "$BASE/service" "$SERVICE"
echo "pylon2influx installed; its log: tail -F /data/log/pylon2influx/current | tai64nlocal"
