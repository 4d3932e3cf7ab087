"""Every captured reply decodes to the values its source states."""

from __future__ import annotations

import re

import pytest

from conftest import load_vectors
from pylonbus.protocol import (
    AlarmInfo,
    AnalogData,
    ChargeDischargeInfo,
    Command,
    FirmwareInfo,
    ManufacturerInfo,
    PackAnalog,
    SystemAnalogData,
    SystemParameters,
    decode_reply,
    infer_command,
    parse_frame,
)

REPLIES = [v for v in load_vectors() if v["direction"] == "response" and v["checksum_valid"]]


def check_pack(pack: PackAnalog, expected: dict) -> None:
    assert pack.cell_voltages == tuple(mv / 1000 for mv in expected["cell_mV"])
    assert pack.temperatures == tuple(expected["temp_C"]) or all(
        abs(t - (raw - 2731) / 10) < 1e-9 for t, raw in zip(pack.temperatures, expected["temp_raw_0.1K"], strict=True)
    )
    assert pack.current == expected["current_A"]
    assert pack.voltage == expected["voltage_mV"] / 1000
    assert pack.remaining_capacity == expected["remaining_mAh"] / 1000
    assert pack.total_capacity == expected["total_mAh"] / 1000
    assert pack.user_defined_items == expected["user_defined_items"]
    assert pack.cycles == expected["cycles"]


@pytest.mark.parametrize("vector", REPLIES, ids=lambda v: v["notes"][:40])
def test_reply_decodes_to_the_stated_values(vector: dict) -> None:
    frame = parse_frame(vector["frame"].encode() + b"\r")
    command = Command(int(vector["response_to_cid2"], 16))
    expected = vector.get("research_decode") or {}
    fanout = "modules" in expected
    result = decode_reply(command, frame, fanout=fanout)
    assert infer_command(frame) == (command, fanout)
    stated = vector["decoded"]
    if isinstance(result, AnalogData):
        check_pack(result, expected)
        assert result.info_flag == expected["infoflag"]
        assert result.command_value == expected["command_value"]
        if "remain2_mAh" in stated:
            assert result.remaining_capacity == stated["remain2_mAh"] / 1000
            assert result.total_capacity == stated["total2_mAh"] / 1000
    elif isinstance(result, SystemAnalogData):
        assert len(result.modules) == expected["modules"] == stated["modules"]
        for pack, module in zip(result.modules, expected["module"], strict=True):
            check_pack(pack, module)
        for index in range(stated["modules"]):
            for key, value in stated[f"m{index}"].items():
                pack = result.modules[index]
                actual = {
                    "current_A": pack.current,
                    "voltage_V": pack.voltage,
                    "cycles": pack.cycles,
                    "remaining_Ah": pack.remaining_capacity,
                    "total_Ah": pack.total_capacity,
                    "bms_temp_C": pack.bms_temperature,
                    "cell_temps_C": list(pack.cell_temperatures),
                    "cells": len(pack.cell_voltages),
                    "cell_V": list(pack.cell_voltages),
                    "temps": len(pack.temperatures),
                }[key]
                assert actual == value, key
    elif isinstance(result, ChargeDischargeInfo):
        assert result.charge_voltage_limit == expected["charge_voltage_limit_mV"] / 1000
        assert result.discharge_voltage_limit == expected["discharge_voltage_limit_mV"] / 1000
        assert result.charge_current_limit == expected["charge_current_limit_A"]
        assert result.discharge_current_limit == expected["discharge_current_limit_A"]
        assert result.charge_enabled is expected["charge_enable"]
        assert result.discharge_enabled is expected["discharge_enable"]
    elif isinstance(result, ManufacturerInfo):
        assert result.model == expected["device_name"]
        assert list(result.software_version) == expected["software_version"]
        assert result.manufacturer == expected["manufacturer"].rstrip("-") == "Pylon"
    elif isinstance(result, SystemParameters):
        assert result.cell_high_voltage_limit == expected["cell_high_mV"] / 1000
        assert result.cell_under_voltage_limit == expected["cell_under_mV"] / 1000
        assert result.charge_high_temperature_limit == expected["charge_high_temp_C"]
        assert result.charge_low_temperature_limit == expected["charge_low_temp_C"]
        assert result.charge_current_limit == expected["charge_current_limit_A"] == 102.0
        assert result.discharge_current_limit == expected["discharge_current_limit_A"] == -100.0
        assert result.module_under_voltage_limit == expected["module_under_mV"] / 1000
    elif isinstance(result, AlarmInfo):
        assert len(result.cell_states) == expected["cells"]
        assert [
            f"0x{s:02X}" for s in (result.status1, result.status2, result.status3, result.status4, result.status5)
        ] == expected["status1_5"]
        assert result.alarms == []
    elif isinstance(result, FirmwareInfo):
        assert bytes(result.manufacture_version).hex() == expected["manufacture_version"]
        assert bytes(result.mainline_version).hex() == expected["mainline_version"]
    else:
        assert f"0x{result.version:02X}" == stated["ver"]  # type: ignore[union-attr]
    for key in ("current_A", "voltage_V", "cycles"):
        if key in stated and isinstance(result, AnalogData):
            assert (
                getattr(result, {"current_A": "current", "voltage_V": "voltage", "cycles": "cycles"}[key])
                == (stated[key])
            )


def test_spec_example_with_3_byte_capacities_reads_51_8_of_74_ah_when_its_checksum_is_fixed() -> None:
    from pylonbus.protocol import encode_frame

    bad = next(v for v in load_vectors() if not v["checksum_valid"])
    info = bytes.fromhex(bad["frame"][13:-4])
    result = decode_reply(Command.ANALOG, parse_frame(encode_frame(0x20, 0x02, 0, info)))
    assert (result.remaining_capacity, result.total_capacity, result.soc) == (51.8, 74.0, 70.0)
    assert result.temperatures == (28.0, 28.0, 28.0, 29.0, 29.0)


@pytest.mark.parametrize(
    ("kept", "message"),
    [
        (2, "'cell_voltages count' at byte offset 2"),
        (10, "'cell_voltages (15 items)' at byte offset 3: needs 30 byte(s), 7 left"),
        (40, "'temperatures (5 items)' at byte offset 34"),
        (55, "3-byte capacities (user-defined items 4)"),
    ],
)
def test_a_cut_reply_names_the_field_and_offset_where_it_ran_out(kept: int, message: str) -> None:
    from pylonbus import DecodeError
    from pylonbus.protocol import encode_frame

    bad = next(v for v in load_vectors() if not v["checksum_valid"])
    info = bytes.fromhex(bad["frame"][13:-4])
    frame = parse_frame(encode_frame(0x20, 0x02, 0, info[:kept]))
    with pytest.raises(DecodeError, match=re.escape(message)):
        decode_reply(Command.ANALOG, frame)
