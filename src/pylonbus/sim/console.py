"""The RS232 console of the simulated stack's master module, as one firmware of CONSOLE.md prints it: echo,
`@`, tables under that firmware's header, `$$`, prompt, `Press [Enter]` pages, and the usual faults.

Its values are the model's, at the console's resolution (mV, mA, m°C, %), so what it prints agrees with the
RS485 answers of the same stack."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..console.commands import BAT_COLUMNS, PWR_COLUMNS, SOH_COLUMNS
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
    clock: str  # the word before the date in `time`
    stat_soh: bool  # prints `SOH : NN` (B67.5.0, B69.16)
    stat_of_module: bool = True  # Pytes V5 refuses `stat N`


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

FIRMWARES = {
    f.name: f
    for f in (
        Firmware("us2000b", "pylon", "Pylon", "B66.6", 8, _CLASSIC, _BAT_OLD, _SOH, "Ds3231", stat_soh=False),
        Firmware(
            "us2000c", "pylon", "Pylon", "B67.5.0", 16, _CLASSIC + " MosTempr M.T.St", _BAT_SOC, _SOH, "RTC", True
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
            True,
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
            stat_soh=False,
            stat_of_module=False,
        ),
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
    values |= {"CYCLE Times": module.cycles, "SOH": state_of_health(module), "Pwr Percent": round(module.soc * 100)}
    if not firmware.stat_soh:
        del values["SOH"]
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
        if name not in ("pwr", "bat", "soh", "stat", "info", "time", "help"):
            return f"Unknown command '{name}' - try 'help'", ""
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
