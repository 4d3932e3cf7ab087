"""The documentation: the API reference builds with warnings as errors, every public class, method and result
field has a docstring (with its unit where it has one), every code example of the guide and of the README's
Library section runs against the simulator, and the C mapping names every function and field of the C API."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import griffe
import pytest

from pylonbus.console import results as console_results
from pylonbus.protocol.families.pylontech import results
from pylonbus.protocol.families.pylontech.layouts import units_of

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PORT = "/dev/ttyUSB0"  # what the examples read; replaced by the simulator's terminal

CONSOLE_PORT = "/dev/ttyUSB1"  # what the console examples read; replaced by the simulator's console
CONSOLE_RESULTS = (
    *("StackSummary", "ModuleSummary", "SystemSummary", "CellTable", "Cell", "SohTable", "SohCell"),
    *("ModuleDetail", "Statistics", "counter_name", "DeviceInfo", "ClockTime", "ConsoleText"),
)

#: The public API as the reference shows it: each object with its public members.
DOCUMENTED = [
    "link.link.Link",
    "link.link.RawReply",
    "link.ports.SerialLike",
    "link.stack.Stack",
    "link.stack.ScanProgress",
    "link.stack.connect",
    "link.stack.read_analog",
    "protocol.plain.as_dict",
    "aio.AsyncLink",
    "aio.AsyncStack",
    "aio.connect",
    "protocol.family.ProtocolVersion",
    "readings.reading.Identity",
    "readings.reading.Reading",
    "readings.reading.StackReading",
    "readings.reading.ModuleReading",
    "sinks.Sink",
    "console.commands.read_session",
    "console.commands.decode",
    "console.framing.split_session",
    "console.framing.ConsoleReader",
    "console.framing.Reply",
    "console.framing.Page",
    "link.console.ConsoleLink",
    "link.console.check_command",
    *(f"console.results.{name}" for name in CONSOLE_RESULTS),
    *(
        f"protocol.families.pylontech.results.{name}"
        for name in (
            "PackAnalog",
            "AnalogData",
            "SystemAnalogData",
            "PackAlarm",
            "AlarmInfo",
            "SystemAlarmInfo",
            "SystemParameters",
            "ManufacturerInfo",
            "ChargeDischargeInfo",
            "ChargeDischargeSetting",
            "SerialNumber",
            "FirmwareInfo",
            "SystemAnalog",
            "Acknowledgement",
            "Status1",
            "Status2",
            "Status3",
            "ChargeStatus",
        )
    ),
]
POLLER = ("scan", "cycle", "reconnect", "retry_in", "errors")


def undocumented(path: str, package: griffe.Module) -> Iterator[str]:
    """The object and its public members without a docstring; an attribute may instead be described in the
    class docstring's Attributes section, and an enum's members are named by the enum's docstring."""
    obj = package[path]
    if not obj.docstring:
        yield path
        return
    if not obj.is_class or any(base.name in ("IntFlag", "IntEnum") for base in obj.resolved_bases):
        return
    described = {
        attribute.name
        for section in obj.docstring.parse("google")
        if section.kind.value == "attributes"
        for attribute in section.value
    }
    for name, member in obj.members.items():
        if name.startswith("_") or name.isupper() or member.is_alias or name in described:
            continue
        if not member.docstring:
            yield f"{path}.{name}"


def test_every_public_object_has_a_docstring() -> None:
    package = griffe.load("pylonbus", search_paths=[str(ROOT / "src")])
    missing = [name for path in DOCUMENTED for name in undocumented(path, package)]
    poller = package["service.poller.Poller"]
    missing += [f"Poller.{name}" for name in ("", *POLLER) if not (poller[name] if name else poller).docstring]
    assert not missing


def test_every_result_field_states_its_unit() -> None:
    package = griffe.load("pylonbus", search_paths=[str(ROOT / "src")])
    wrong = []
    for name in dir(results):
        cls = getattr(results, name)
        if not isinstance(cls, type) or cls.__module__ != results.__name__:
            continue
        for field, unit in units_of(cls).items():
            member = package[f"protocol.families.pylontech.results.{name}"].all_members[field]
            if not re.search(rf"(?<!\w){re.escape(unit)}(?!\w)", member.docstring.value):
                wrong.append(f"{name}.{field} ({unit}): {member.docstring.value}")
    assert not wrong


def test_every_console_result_field_states_its_unit() -> None:
    package = griffe.load("pylonbus", search_paths=[str(ROOT / "src")])
    wrong = []
    for name in CONSOLE_RESULTS:
        cls = getattr(console_results, name)
        for field, unit in getattr(cls, "UNITS", {}).items():
            member = package[f"console.results.{name}"].all_members[field]
            if not re.search(rf"(?<!\w){re.escape(unit)}(?!\w)", member.docstring.value):
                wrong.append(f"{name}.{field} ({unit}): {member.docstring.value}")
    assert not wrong


def test_the_reference_builds_without_warnings(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    reference = (tmp_path / "reference" / "index.html").read_text()
    for text in ("Voltage of each cell in V", "AsyncStack", "RawReply", "Thread-safe"):
        assert text in reference
    console = (tmp_path / "console" / "index.html").read_text()
    for text in ("ConsoleLink", "read_session", "SystemSummary", "Remaining energy in Wh", "check_command"):
        assert text in console


def examples(path: Path, section: str | None = None) -> list[str]:
    text = path.read_text()
    if section is not None:
        start = text.index(section)
        text = text[start : text.index("\n### ", start + len(section))]
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


GUIDE = [(f"{page.name} {n}", code) for page in sorted(DOCS.glob("*.md")) for n, code in enumerate(examples(page), 1)]
README = [(f"README {n}", code) for n, code in enumerate(examples(ROOT / "README.md", "### Library\n"), 1)]


def simulator(*args: str) -> Iterator[str]:
    """A simulator on a real pty (frozen, unpaced), its terminal's path while it runs."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pylonbus.cli.sim", "--pty", *args, "--frozen", "--no-pace"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    yield proc.stdout.readline().strip()
    proc.terminate()
    proc.wait()
    proc.stdout.close()


@pytest.fixture(scope="module")
def battery() -> Iterator[str]:
    """RS485 with full groups 0 and 1 (so a scan meets no silent address)."""
    yield from simulator("--stack", "US3000C*14;US2000C*14")


@pytest.fixture(scope="module")
def console() -> Iterator[str]:
    """The console (a US2000C firmware) of a stack of two modules."""
    yield from simulator("--console", "--stack", "US3000C*2")


def test_the_guide_and_the_readme_have_examples() -> None:
    assert len(GUIDE) >= 9
    assert len(README) >= 3


@pytest.mark.parametrize(("where", "code"), GUIDE + README, ids=[where for where, _ in GUIDE + README])
def test_every_example_runs(
    where: str, code: str, battery: str, console: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = code.replace(PORT, battery).replace(CONSOLE_PORT, console)
    exec(compile(code, where, "exec"), {"__name__": "__main__"})
    assert capsys.readouterr().out  # each example shows what it read


C_API = [
    "pyl_openSerialPort",
    "pyl_connect",
    "pyl_setGroup",
    "pyl_setAdr",
    "pyl_getProtocolVersion",
    "pyl_getAnalogData",
    "PYL_HandleT",
    "PYL_AnalogDataT",
    "PYL_SystemParameterT",
    "PYL_ManufacturerInformationT",
    "PYL_SerialNumberT",
    "PYL_AlarmInfoT",
    "PYL_ChargeDischargeInfoT",
    "PYL_DEFPORTNAME",
    "PYL_MAX_DEVICES_IN_GROUP",
    "PYL_MODULE_CURRENT_DIVIDER",
    "PYL_USABLE_PERCENT",
    # the fields of the structs, as the C code names them
    "infoflag",
    "commandValue",
    "cellsCount",
    "cellVoltage",
    "tempCount",
    "temp[i]",
    "current",
    "voltage",
    "remainingCapacity",
    "userDefinedItemCount",
    "capacity",
    "cycleCount",
    "cellHighVoltageLimit",
    "cellLowVoltageLimit",
    "cellUnderVoltageLimit",
    "chargeHighTemperatureLimit",
    "chargeLowTemperatureLimit",
    "chargeCurrentLimit",
    "moduleHighVoltageLimit",
    "moduleLowVoltageLimit",
    "moduleUnderVoltageLimit",
    "dischargeHighTemperatureLimit",
    "dischargeLowTemperatureLimit",
    "dischargeCurrentLimit",
    "deviceName",
    "softwareVersion",
    "manufacturerName",
    "`sn`",
    "dataFlag",
    "cellVoltageStatus",
    "tempStatus",
    "chargeCurrentStat",
    "moduleVoltageStat",
    "dischargeCurrentStat",
    "status[0]",
    "chargeVoltageLimit",
    "dischargeVoltageLimit",
    "chargeDischargeStatus",
    "`adr`",
    "`group`",
    "protocolVersion",
    "initialized",
]


def test_the_c_mapping_names_every_function_and_field() -> None:
    text = (DOCS / "c-library.md").read_text()
    assert [name for name in C_API if name not in text] == []


def test_help_and_dir_show_the_public_api_and_import_stays_lazy() -> None:
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, pydoc, pylonbus\n"
            "print('serial' in sys.modules, 'pylonbus.link.link' in sys.modules)\n"
            "print(' '.join(dir(pylonbus)))\n"
            "print('serial' in sys.modules)\n"
            "print(pydoc.render_doc(pylonbus, renderer=pydoc.plaintext))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    loaded, names, after_dir, doc = shown.split("\n", 3)
    assert loaded == "False False"  # import pylonbus loads neither pyserial nor the link
    assert {"Link", "Stack", "connect", "read_analog", "as_dict", "RawReply", "NoReplyError"} <= set(names.split())
    assert after_dir == "False"  # listing the names imports nothing
    for text in ("class Link", "class Stack", "connect(", "read_analog(", "as_dict(", "class RawReply", "aio"):
        assert text in doc
