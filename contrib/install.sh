#!/bin/sh
# Install pylon2influx as a systemd service, from a clone, a wheel or an sdist of pylonbus (run as root):
#   contrib/install.sh                          the clone this script is in
#   contrib/install.sh --source dist/pylonbus-0.2.0-py3-none-any.whl
#   contrib/install.sh --uninstall              remove it again (the configuration and the spool stay)
# What it does: a virtual environment under --prefix (/opt/pylonbus), so no system Python is touched (PEP 668);
# a system user (--user, pylon2influx) in the group dialout; the systemd unit running that venv's pylon2influx
# with /etc/pylon2influx.toml; the udev rule for the adapter; /etc/pylon2influx.toml if there is none.
# --root DIR (or DESTDIR=DIR) puts every file under DIR as if it were / and touches nothing outside it (no
# systemctl, no udevadm, no probing of serial ports): for tests and images. The venv's scripts then name DIR.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=${DESTDIR:-}
prefix=/opt/pylonbus
source=$(dirname "$here")
user=pylon2influx
extras=
python=${PYTHON:-python3}
uninstall=
start=yes

usage() {
    sed -n '2,10s/^# \{0,1\}//p' "$0"
    echo "Options: --root DIR, --prefix DIR, --source PATH, --user NAME, --extras NAMES, --python PYTHON,"
    echo "         --no-start, --uninstall"
}

fail() {
    echo "install.sh: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case $1 in
        --root | --prefix | --source | --user | --extras | --python)
            [ $# -ge 2 ] || fail "$1 needs a value"
            case $1 in
                --root) root=$2 ;;
                --prefix) prefix=$2 ;;
                --source) source=$2 ;;
                --user) user=$2 ;;
                --extras) extras=$2 ;;
                --python) python=$2 ;;
            esac
            shift 2
            ;;
        --uninstall) uninstall=yes; shift ;;
        --no-start) start=; shift ;;
        -h | --help) usage; exit 0 ;;
        *) fail "unknown option $1 (--help lists them)" ;;
    esac
done
root=${root%/}
case $prefix in /*) ;; *) fail "--prefix $prefix: give an absolute path" ;; esac

venv=$root$prefix
unit=$root/etc/systemd/system/pylon2influx.service
rule=$root/etc/udev/rules.d/99-pylontech.rules
config=$root/etc/pylon2influx.toml
# useradd and userdel work inside another root only where it has the account files.
if [ -z "$root" ]; then
    accounts=yes
    [ "$(id -u)" = 0 ] || fail "run as root (sudo), or give --root DIR to install into a folder"
elif [ -f "$root/etc/passwd" ] && [ -f "$root/etc/group" ]; then
    accounts=yes
else
    accounts=
fi
on_system() { [ -z "$root" ]; }

if [ -n "$uninstall" ]; then
    if on_system && command -v systemctl >/dev/null; then
        systemctl disable --now pylon2influx.service 2>/dev/null || true
    fi
    rm -f "$unit" "$rule"
    rm -rf "$venv"
    if [ -n "$accounts" ] && id_of=$(grep "^$user:" "$root/etc/passwd" 2>/dev/null) && [ -n "$id_of" ]; then
        if on_system; then userdel "$user"; else userdel --root "$root" "$user"; fi
    fi
    if on_system && command -v systemctl >/dev/null; then systemctl daemon-reload; fi
    if on_system && command -v udevadm >/dev/null; then udevadm control --reload || true; fi
    echo "pylon2influx removed; $config and $root/var/lib/pylon2influx (spool, energy counters) are kept"
    exit 0
fi

[ -e "$source" ] || fail "--source $source: no such file or directory (a clone, a wheel or an sdist of pylonbus)"
package=$source
[ -z "$extras" ] || package="${source}[$extras]"

echo "installing pylonbus from $source into $venv"
"$python" -m venv "$venv" || fail "$python -m venv failed (Debian: apt install python3-venv)"
# Out first: a clone changed under the same version number would otherwise count as installed already.
"$venv/bin/pip" uninstall --quiet --yes pylonbus 2>/dev/null || true
"$venv/bin/pip" install --quiet --upgrade "$package"
"$venv/bin/pylon2influx" --version

if [ -n "$accounts" ]; then
    if grep -q "^$user:" "$root/etc/passwd"; then
        echo "user $user exists; adding it to dialout"
        if on_system; then usermod -aG dialout "$user"; else usermod --root "$root" -aG dialout "$user"; fi
    else
        echo "creating the system user $user (group dialout)"
        set -- --system --user-group --no-create-home --home-dir /var/lib/pylon2influx --shell /usr/sbin/nologin
        if on_system; then useradd "$@" --groups dialout "$user"; else useradd --root "$root" "$@" --groups dialout "$user"; fi
    fi
else
    echo "no user created: $root/etc/passwd does not exist (the unit names User=$user)"
fi

mkdir -p "$(dirname "$unit")"
sed -e "s|^ExecStart=.*|ExecStart=$prefix/bin/pylon2influx --config /etc/pylon2influx.toml|" \
    -e "s|^User=.*|User=$user|" -e "s|^Group=.*|Group=$user|" \
    "$here/pylon2influx.service" >"$unit"
echo "wrote $unit"

device=/dev/ttyUSB_pylontech
mkdir -p "$(dirname "$rule")"
if [ -f "$rule" ]; then
    echo "kept $rule"
elif on_system && "$venv/bin/pylontech" -d auto --udev-rule >"$rule.new" 2>/dev/null; then
    mv "$rule.new" "$rule"
    echo "wrote $rule for the adapter a battery answers on"
else
    rm -f "$rule.new"
    cp "$here/99-pylontech.rules" "$rule"
    device=auto  # the rule's serial is a placeholder until edited: the daemon finds the port itself meanwhile
    echo "wrote $rule with a placeholder serial: run $prefix/bin/pylontech -d auto --udev-rule > $rule once a battery is connected"
fi

if [ -f "$config" ]; then
    echo "kept $config"
else
    mkdir -p "$(dirname "$config")"
    sed -e "s|^device = \"/dev/ttyUSB_pylontech\"|device = \"$device\"|" "$here/pylon2influx.toml" >"$config"
    echo "wrote $config (device = \"$device\"; uncomment [influx], [mqtt] or [http] to send the readings)"
fi

if on_system; then
    if command -v udevadm >/dev/null; then
        udevadm control --reload
        udevadm trigger --subsystem-match=tty
    fi
    if command -v systemctl >/dev/null; then
        systemctl daemon-reload
        if [ -n "$start" ]; then
            systemctl enable --now pylon2influx.service
            echo "started: journalctl -u pylon2influx -f"
        else
            systemctl enable pylon2influx.service
        fi
    fi
fi
echo "done: $prefix/bin holds pylontech, pylon2influx and pylontech-sim"
