"""The RS232 console of the simulated stack's master module, as one firmware of CONSOLE.md prints it: echo,
`@`, tables under that firmware's header, `$$`, prompt, `Press [Enter]` pages, and the usual faults.

Its values are the model's, at the console's resolution (mV, mA, m°C, %), so what it prints agrees with the
RS485 answers of the same stack."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..console.commands import BAT_COLUMNS, PWR_COLUMNS, SOH_COLUMNS, SYSTEM_COLUMNS
from ..console.framing import CONSOLE_BAUD
from ..console.tables import write_row
from .bus import BITS_PER_BYTE
from .model import Module, Stack
from .responder import Faults

TABLE_END = "\r\r\n"  # after each table row (CONSOLE.md: hex dumps)
KEY_END = "\r\n\r"  # after each key/value line of info and time
DONE = "\r\n\rCommand completed successfully\r\n\r$$\r\n\r"
PAGE_PROMPT = "\n\rPress [Enter] to be continued,other key to exit\r"
PAGE_ERASE = "\r\r" + " " * 50 + "\r\r\r\n"
PAGE_LINES = 18
CLOCK_START = datetime(2026, 1, 1)


@dataclass(frozen=True)
class Firmware:
    """One firmware's console: its prompt, headers and key sets, as captured."""

    name: str
    prompt: str
    manufacturer: str
    main_version: str
    slots: int  # rows of `pwr`
    pwr_header: str
    bat_header: str
    soh_header: str
    clock: str  # the word before the date in `time` ("": the bare date, Force H2)
    soh_label: str  # the `stat` line of the SOH: `SOH` (B67.5.0, B69.16), `SOH Percent` (Force H2), "" none
    stat_of_module: bool = True  # Pytes V5 refuses `stat N`
    unit_header: str = ""  # a Force H2 tower: `pwr` is the tower in one row, `unit` a row a unit


_CLASSIC = (
    "Power Volt   Curr   Tempr  Tlow   Thigh  Vlow   Vhigh  Base.St  Volt.St  Curr.St  Temp.St  Coulomb  "
    "Time                 B.V.St   B.T.St  "
)
_BAT_OLD = "Battery  Volt     Curr     Tempr    Base State   Volt. State  Curr. State  Temp. State  Coulomb     "
_BAT_SOC = (
    "Battery  Volt     Curr     Tempr    Base State   Volt. State  Curr. State  Temp. State  SOC          "
    "Coulomb      BAL         "
)
_SOH = "Battery    Voltage    SOHCount   SOHStatus "
# Force H2 B52.26 (ioBroker captures): the tower's `pwr`, its `unit` and `bat` (every cell of the tower).
_TOWER = (
    "Volt   Curr   Tempr  BTlow  BThigh BVlow  BVhigh UTlow  UThigh UVlow  UVhigh Base.St  Volt.St  Curr.St  "
    "Temp.St  CoulombAH                CoulombWH              Time                 B.V.St   B.T.St   U.V.St   "
    "U.T.St   Err Code"
)
_UNIT = (
    "Index  Volt   Curr   Tempr  BTlow  BThigh BVlow  BVhigh Base.St  Volt.St  Temp.St  CoulombAH                "
    "CoulombWH               Time               "
)
_BAT_TOWER = "Bat  Volt Curr    Tempr   V.State T.State AH(mAH)       WH(mWH)            Bal"

FIRMWARES = {
    f.name: f
    for f in (
        Firmware("us2000b", "pylon", "Pylon", "B66.6", 8, _CLASSIC, _BAT_OLD, _SOH, "Ds3231", soh_label=""),
        Firmware(
            "us2000c", "pylon", "Pylon", "B67.5.0", 16, _CLASSIC + " MosTempr M.T.St", _BAT_SOC, _SOH, "RTC", "SOH"
        ),
        Firmware(
            "us5000",
            "pylon",
            "Pylon",
            "B69.26.0.0",
            16,
            "Power Volt   Curr   Tempr  Tlow   Tlow.Id  Thigh  Thigh.Id Vlow   Vlow.Id  Vhigh  Vhigh.Id Base.St  "
            "Volt.St  Curr.St  Temp.St  Coulomb  Time                 B.V.St   B.T.St  MosTempr M.T.St   SysAlarm.St",
            _BAT_SOC,
            _SOH,
            "Ds3231",
            "SOH",
        ),
        Firmware(
            "pytes",
            "PYTES",
            "PYTES",
            "SPBMS16SRP2304V1.10.7.1C",
            16,
            _CLASSIC + " Barcode              DevType             ",
            "Battery  Volt     Tempr    Base State   Volt. State  Curr. State  Temp. State  Coulomb     ",
            "Battery    Voltage    SOHStatus  ",
            "DS3231M",
            soh_label="",
            stat_of_module=False,
        ),
        Firmware("forceh2", "pylon", "Pylon", "B52.26.0", 0, _TOWER, _BAT_TOWER, _SOH, "", "SOH Percent", False, _UNIT),
    )
}
HELP = (
    "Local command:",
    *(
        f"{name:<9}{text}"
        for name, text in (
            ("bat", "Battery data show - bat [pwr][index]"),
            ("data", "History data load - data [event/history/misc][item]"),
            ("datalist", "Show recorded data - datalist [event/history/misc][item/bat]"),
            ("disp", "Display Info at regular intervals - disp [(pwrs pwrNo)/val]"),
            ("getpwr", "Get power Info - getpwr"),
            ("help", "Help [cmd]"),
            ("info", "Device infomation - info"),
            ("log", "Log information show - log"),
            ("login", "Login Admin mode - login [password]"),
            ("logout", "user mode  - logout"),
            ("pwr", "Power data show - pwr [index]"),
            ("shut", "Shut down - shut"),
            ("soh", "State of health - soh [addr]"),
            ("stat", "Statistic data show - stat"),
            ("time", "Time - time [year] [month] [day] [hour] [minute] [second]"),
            ("trst", "Test Soft Reset - trst"),
            ("updata", "updata system - updata"),
        )
    ),
    "*" * 58,
    "Remote command:",
    *(f"{name:<9}{name} of another module - {name} [addr]" for name in ("bat", "info", "pwr", "soh", "stat")),
)
STAT_LABELS = (
    "Data Items", "HisData Items", "Charge Cnt.", "Discharge Cnt.", "Charge Times", "Status Cnt.", "Idle Times",
    "COC Times", "DOC Times", "SC Times", "Bat OV Times", "Bat HV Times", "Bat LV Times", "Pwr OV Times",
    "Pwr HV Times", "COT Times", "DUT Times", "Shut Times", "Reset Times", "SOH Times", "CYCLE Times", "SOH",
    "Pwr Percent", "Pwr Coulomb", "Dsg Cap", "LV Cnt", "LifeWarn Times", "LifeAlarm Times",
)  # fmt: skip


def module_fields(module: Module, clock: datetime) -> dict[str, Any]:
    """The `pwr` row of a module: what its RS485 0x42 reply holds, at the console's resolution."""
    pack = module.pack()
    cells, sensors = pack.cell_voltages, pack.temperatures[1:5]
    current = pack.current
    return {
        "module": module.number,
        "voltage": pack.voltage,
        "current": current,
        "temperature": pack.temperatures[0],
        "min_temperature": min(sensors),
        "min_temperature_index": sensors.index(min(sensors)),
        "max_temperature": max(sensors),
        "max_temperature_index": sensors.index(max(sensors)),
        "min_cell_voltage": min(cells),
        "min_cell_voltage_index": cells.index(min(cells)),
        "max_cell_voltage": max(cells),
        "max_cell_voltage_index": cells.index(max(cells)),
        "base_state": "Charge" if current > 0 else "Dischg" if current < 0 else "Idle",
        **dict.fromkeys(("voltage_state", "current_state", "temperature_state"), "Normal"),
        **dict.fromkeys(("battery_voltage_state", "battery_temperature_state", "system_alarm_state"), "Normal"),
        "soc": float(round(module.soc * 100)),
        "time": clock.strftime("%Y-%m-%d %H:%M:%S"),
        # The sixth sensor is the MOSFET's (US5000): models without one print `-` in a mixed stack.
        "mosfet_temperature": pack.temperatures[5] if len(pack.temperatures) > 5 else None,
        "mosfet_temperature_state": "Normal" if len(pack.temperatures) > 5 else None,
        "serial": module.serial,
        "model": module.preset.device_name,
    }


def balancing(module: Module) -> tuple[bool, ...]:
    """The cells the BMS bleeds: the highest while charging."""
    top = max(module.cell_offsets)
    return tuple(module.current > 0 and offset == top and top > 0 for offset in module.cell_offsets)


def cell_fields(module: Module) -> list[dict[str, Any]]:
    pack = module.pack()
    sensors = pack.temperatures[1:5]
    count = len(pack.cell_voltages)
    return [
        {
            "cell": cell,
            "voltage": volts,
            "current": pack.current,
            "temperature": sensors[min(cell * len(sensors) // count, len(sensors) - 1)],
            **dict.fromkeys(("voltage_state", "current_state", "temperature_state"), "Normal"),
            "base_state": "Charge" if pack.current > 0 else "Dischg" if pack.current < 0 else "Idle",
            "soc": float(round(module.soc * 100)),
            "remaining_capacity": pack.remaining_capacity,
            "balancing": bal,
        }
        for cell, (volts, bal) in enumerate(zip(pack.cell_voltages, balancing(module), strict=True))
    ]


def state_of_health(module: Module) -> int:
    """%, falling with the cycles as LFP cells do (about 2 % a hundred cycles)."""
    return max(70, 100 - module.cycles // 50)


def counters(module: Module, firmware: Firmware) -> dict[str, int]:
    """`stat`: the cycle count and SOH of the model; the other counters fixed per module (seeded by serial)."""
    rng = random.Random(module.serial)
    values = {label: rng.randrange(0, 5000) for label in STAT_LABELS}
    del values["SOH"]
    values |= {"CYCLE Times": module.cycles, "Pwr Percent": round(module.soc * 100)}
    if firmware.soh_label:
        values[firmware.soh_label] = state_of_health(module)
    return values


class ConsoleBus:
    """The console end of one connection: bytes in (echoed as typed), replies with the time they start."""

    def __init__(
        self,
        stack: Stack,
        firmware: Firmware,
        faults: Faults | None = None,
        baud: int = CONSOLE_BAUD,
        pace: bool = True,
    ) -> None:
        self.stack = stack
        self.firmware = firmware
        self.faults = faults or Faults()
        self.baud = baud
        self.pace = pace
        self._line = ""
        self._pages: list[str] = []  # what follows a page prompt, until Enter
        self._rng = random.Random(stack.seed)

    @property
    def byte_time(self) -> float:
        return BITS_PER_BYTE / self.baud if self.pace else 0.0

    @property
    def modules(self) -> dict[int, Module]:
        """The master's group: the lowest group of the stack."""
        group = min(m.group for m in self.stack.modules.values())
        return {m.number: m for m in self.stack.group_modules(group)}

    def receive(self, data: bytes, now: float) -> list[tuple[float, bytes]]:
        out: list[tuple[float, bytes]] = []
        for char in data.decode("latin-1"):
            if self._pages:
                out.append((now, self._turn_page(char in "\r\n").encode("latin-1")))
            elif char in "\r\n":
                command, self._line = self._line.strip(), ""
                reply = self.answer(command, now)
                if reply is not None:
                    out.append((now + self.faults.delay, reply.encode("latin-1")))
            else:
                self._line += char
                out.append((now, char.encode("latin-1")))  # the console echoes as it is typed
        return out

    def _turn_page(self, enter: bool) -> str:
        """Enter shows the next page (after erasing the page prompt); any other key ends the listing."""
        if not enter:
            self._pages = []
            return DONE + self.firmware.prompt + ">"
        page, *self._pages = self._pages
        return PAGE_ERASE + page

    def answer(self, command: str, now: float) -> str | None:
        """The text after the echo of `command`; None when the console stays silent (fault `no_reply`)."""
        prompt = self.firmware.prompt + ">"
        if not command:
            return "\r\n\r" + prompt
        if self._rng.random() < self.faults.no_reply:
            return None
        self.stack.advance(now)
        body, end = self.body(command)
        if isinstance(body, str):
            return f"\n\r@\r\r\n{body}\r\n\r$$\r\n\r{prompt}"
        pages = [end.join(body[i : i + PAGE_LINES]) for i in range(0, len(body), PAGE_LINES)]
        if len(pages) > 1:
            self._pages = [page + PAGE_PROMPT for page in pages[1:-1]] + [pages[-1] + DONE + prompt]
            return "\n\r@" + end + pages[0] + PAGE_PROMPT
        text = "\n\r@" + end + end.join(self._faulty(body)) + DONE + prompt
        if self._rng.random() < self.faults.truncate:
            return text[: self._rng.randrange(4, len(text) - len(prompt))]  # the line went quiet mid-reply
        return text

    def _faulty(self, lines: list[str]) -> list[str]:
        """With fault `corrupt`, one row of a table loses its end (a line cut on the wire)."""
        if len(lines) > 2 and self._rng.random() < self.faults.corrupt:
            row = self._rng.randrange(1, len(lines))
            lines = [*lines[:row], lines[row][: len(lines[row]) // 2], *lines[row + 1 :]]
        return lines

    def body(self, command: str) -> tuple[list[str] | str, str]:
        """The lines of the answer and their line ending, or an error text (no completion line)."""
        name, *arguments = command.split()
        modules = self.modules
        number = int(arguments[0]) if arguments and arguments[0].isdigit() else None
        invalid = "Invalid command or fail to excute.\r\n\rUsage:\r\n\r" + name
        known = ("pwr", "bat", "soh", "stat", "info", "time", "help") + (("unit",) if self.firmware.unit_header else ())
        if name not in known:
            return f"Unknown command '{name}' - try 'help'", ""
        if self.firmware.unit_header and name != "help":
            # What a tower's console answers with a number is not captured: only the bare commands are served.
            return (invalid, "") if arguments else (self.tower(name), TABLE_END)
        if arguments and (number not in modules or name in ("time", "help")) and name != "help":
            return invalid, ""
        if name == "stat" and number is not None and not self.firmware.stat_of_module:
            return invalid, ""
        module = modules[number] if number is not None else modules[min(modules)]
        firmware = self.firmware
        if name == "help":
            return list(HELP), KEY_END
        if name == "pwr" and number is None:
            return self.pwr(), TABLE_END
        if name == "pwr":
            return pwr_detail(module), TABLE_END
        if name == "bat":
            rows = [write_row(firmware.bat_header, cell, BAT_COLUMNS) for cell in cell_fields(module)]
            return [firmware.bat_header, *rows], TABLE_END
        if name == "soh":
            return soh_lines(module, firmware), TABLE_END
        if name == "stat":
            lines = [f"Device address {module.number:>10}"]
            lines += [f"{label:<16}: {value:>8}" for label, value in counters(module, firmware).items()]
            return lines, TABLE_END
        if name == "info":
            return info_lines(module, firmware), KEY_END
        return [f"{firmware.clock} {self.clock():%Y-%m-%d %H:%M:%S}"], KEY_END

    def tower(self, name: str) -> list[str]:
        """A Force H2's answer: the group's modules are the units of one tower, in series."""
        units = list(self.modules.values())
        clock = self.clock()
        firmware = self.firmware
        if name == "pwr":
            fields = tower_fields(units, clock)
            voltage = round(fields["voltage"] * 1000)
            head = [f"AverageTempr   : {round(fields['average_temperature'] * 1000)}"]
            head += [f"DC Volt        : {voltage}", f"Bat Volt       : {voltage}"]
            return [*head, firmware.pwr_header, write_row(firmware.pwr_header, fields, SYSTEM_COLUMNS)]
        if name == "unit":
            rows = [write_row(firmware.unit_header, unit_fields(unit, clock), PWR_COLUMNS) for unit in units]
            return [f"AverageTempr: {round(average_temperature(units) * 1000)}", firmware.unit_header, *rows]
        if name == "bat":
            cells = [cell for unit in units for cell in unit_cells(unit)]
            rows = [write_row(firmware.bat_header, {**cell, "cell": n}, BAT_COLUMNS) for n, cell in enumerate(cells)]
            return [f"Time: {clock:%Y-%m-%d %H:%M:%S}", firmware.bat_header, *rows]
        if name == "soh":
            volts = [v for unit in units for v in unit.pack().cell_voltages]
            rows = [
                write_row(
                    firmware.soh_header, {"cell": n, "voltage": v, "soh_count": 0, "soh_status": "Normal"}, SOH_COLUMNS
                )
                for n, v in enumerate(volts)
            ]
            return [firmware.soh_header, *rows]
        if name == "stat":
            values = counters(units[0], firmware)
            return [f"Device address {0:>11}", *(f"{label:<16}: {value:>8}" for label, value in values.items())]
        if name == "info":
            return tower_info(units, firmware)
        return [f"{clock:%Y-%m-%d %H:%M:%S}"]

    def clock(self) -> datetime:
        return CLOCK_START + timedelta(seconds=int(self.stack.elapsed))

    def pwr(self) -> list[str]:
        header = self.firmware.pwr_header
        modules = self.modules
        rows = [
            write_row(header, module_fields(modules[n], self.clock()), PWR_COLUMNS)
            if n in modules
            else write_row(header, {"module": n, "base_state": "Absent"}, PWR_COLUMNS)
            for n in range(1, self.firmware.slots + 1)
        ]
        return [header, *rows]


def average_temperature(units: list[Module]) -> float:
    return round(sum(unit.pack().temperatures[0] for unit in units) / len(units), 3)


def unit_fields(unit: Module, clock: datetime) -> dict[str, Any]:
    """A unit's row of Force H2 `unit`: its `pwr` row, with the Ah and Wh left (the share of energy: its SOC)."""
    pack = unit.pack()
    fields = module_fields(unit, clock)
    energy = round(pack.remaining_capacity * pack.voltage, 3)
    return fields | {
        "remaining_capacity": pack.remaining_capacity,
        "state_of_energy": fields["soc"],
        "remaining_energy": energy,
    }


def unit_cells(unit: Module) -> list[dict[str, Any]]:
    """A unit's cells in Force H2 `bat`: each with the unit's Ah and SOC, and the Wh of its own voltage."""
    cells = cell_fields(unit)
    for cell in cells:
        cell |= {
            "state_of_energy": cell["soc"],
            "remaining_energy": round(cell["remaining_capacity"] * cell["voltage"], 3),
        }
    return cells


def tower_fields(units: list[Module], clock: datetime) -> dict[str, Any]:
    """Force H2 `pwr`: the units in series. Their voltages add up; the current, SOC and Ah left are the units'
    means (the simulated units share the load unevenly, as parallel modules do), the energy their sum."""
    rows = [unit_fields(unit, clock) for unit in units]

    def mean(key: str) -> float:
        return round(float(sum(row[key] for row in rows)) / len(rows), 3)

    current = mean("current")
    return {
        "voltage": round(sum(row["voltage"] for row in rows), 3),
        "current": current,
        "temperature": max(row["temperature"] for row in rows),
        "average_temperature": average_temperature(units),
        "min_temperature": min(row["min_temperature"] for row in rows),
        "max_temperature": max(row["max_temperature"] for row in rows),
        "min_cell_voltage": min(row["min_cell_voltage"] for row in rows),
        "max_cell_voltage": max(row["max_cell_voltage"] for row in rows),
        "min_unit_temperature": min(row["temperature"] for row in rows),
        "max_unit_temperature": max(row["temperature"] for row in rows),
        "min_unit_voltage": min(row["voltage"] for row in rows),
        "max_unit_voltage": max(row["voltage"] for row in rows),
        "base_state": "Charge" if current > 0 else "Dischg" if current < 0 else "Idle",
        **dict.fromkeys(("voltage_state", "current_state", "temperature_state"), "Normal"),
        **dict.fromkeys(("battery_voltage_state", "battery_temperature_state"), "Normal"),
        **dict.fromkeys(("unit_voltage_state", "unit_temperature_state"), "Normal"),
        "soc": float(round(mean("soc"))),
        "remaining_capacity": mean("remaining_capacity"),
        "state_of_energy": float(round(mean("soc"))),
        "remaining_energy": round(sum(row["remaining_energy"] for row in rows), 3),
        "time": clock.strftime("%Y-%m-%d %H:%M:%S"),
        "error_code": 0,
    }


def tower_info(units: list[Module], firmware: Firmware) -> list[str]:
    """Force H2 `info`: the tower's keys as B52.26 prints them (its barcode: the first unit's serial)."""
    preset, cells = units[0].preset, sum(unit.preset.cells for unit in units)
    limit = round(preset.current_limit * 1000)
    values = (
        ("Device address", 1),
        ("Manufacturer", firmware.manufacturer),
        ("Device name", "Force_H2"),
        ("Main Soft version", firmware.main_version),
        ("Soft  version", "V1.5"),
        ("Boot  version", "V1.1"),
        ("Comm version", "V2.0"),
        ("Release Date", "21-06-18"),
        ("Module Barcode", units[0].serial),
        ("Specification", f"{3.2 * cells:g}V/{preset.capacity:g}AH"),
        ("Cell Number", cells),
        ("Max Dischg Curr", f"-{limit}mA"),
        ("Max Charge Curr", f"{limit}mA"),
    )
    return [f"{key:<20}: {value}" for key, value in values]


def soh_lines(module: Module, firmware: Firmware) -> list[str]:
    status = "00000000" if "SOHCount" not in firmware.soh_header else "Normal"
    rows = [
        write_row(firmware.soh_header, {"cell": n, "voltage": v, "soh_count": 0, "soh_status": status}, SOH_COLUMNS)
        for n, v in enumerate(module.pack().cell_voltages)
    ]
    return [f"Power   {module.number}", firmware.soh_header, *rows]


def pwr_detail(module: Module) -> list[str]:
    row = module_fields(module, CLOCK_START)
    pack = module.pack()
    seconds = "Charge Sec." if pack.current >= 0 else "Discharge Sec."
    values = (
        ("Voltage", f"{round(pack.voltage * 1000)}", "mV"),
        ("Current", f"{round(pack.current * 1000)}", "mA"),
        ("Temperature", f"{round(pack.temperatures[0] * 1000)}", "mC"),
        ("Coulomb", f"{row['soc']:.0f}", "%"),
        ("Total Coulomb", f"{round(pack.total_capacity * 1000)}", "mAH"),
        ("Max Voltage", "54000", "mV"),
        ("Charge Times", str(module.cycles), ""),
        ("Basic Status", row["base_state"], ""),
        (seconds, "0", "s"),
        *((label, "Normal", "") for label in ("Volt Status", "Current Status", "Tmpr. Status", "Coul. Status")),
        ("Soh. Status", "Normal", ""),
        ("Heater Status", "OFF", ""),
        ("Protect ENA", "BOV BHV BLV BUV POV PHV PLV PUV COC DOC SC", ""),
        *((label, "0x0", "") for label in ("Bat Events", "Power Events", "System Fault")),
    )
    rule = " " + "-" * 28
    return [rule, f" Power  {module.number}", "", *(f" {k:<16}: {v:<11} {u}" for k, v, u in values), rule]


def info_lines(module: Module, firmware: Firmware) -> list[str]:
    preset = module.preset
    limit = round(preset.protection_current * 1000)
    values = (
        ("Device address", module.number),
        ("Manufacturer", firmware.manufacturer),
        ("Device name", preset.device_name),
        ("Board version", "V10R04"),
        ("Main Soft version", firmware.main_version),
        ("Soft  version", "V{}.{}".format(*preset.software_version)),
        ("Boot  version", "V2.0"),
        ("Comm version", "V2.0"),
        ("Release Date", "21-04-29"),
        ("Barcode", module.serial),
        ("Specification", f"{3.2 * preset.cells:g}V/{preset.capacity:g}AH"),
        ("Cell Number", preset.cells),
        ("Max Dischg Curr", f"-{limit}mA"),
        ("Max Charge Curr", f"{limit}mA"),
        ("EPONPort rate", 1200),
        ("Console Port rate", 115200),
    )
    return [f"{key:<20}: {value}" for key, value in values]
