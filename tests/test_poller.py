"""The Poller: one typed Reading a cycle, with alarms, identity and derived values; modules that miss the scan
or fall silent are found again."""

from __future__ import annotations

import pytest

from pylonbus import Link, Stack
from pylonbus.service import Poller
from pylonbus.sim import Stack as Model

SPEC = "US3000C*2,US5000;UP2500"
MODEL = Model.parse(SPEC, seed=4, frozen=True)


def poller(url: str, groups: tuple[int, ...] = (0,)) -> Poller:
    link = Link(url)
    result = Poller([Stack(link, group) for group in groups], rescan=3600)
    result.scan()
    return result


def test_a_reading_holds_analog_alarm_identity_and_derived_values() -> None:
    reading = poller(f"sim://?stack={SPEC}&seed=4&frozen=1&pace=0", (0, 1)).cycle()
    assert [(m.group, m.module) for m in reading.modules] == [(0, 1), (0, 2), (0, 3), (1, 1)]
    for module in reading.modules:
        model = MODEL.modules[(module.group << 4) + module.module + 1]
        pack = model.pack()
        assert module.online and module.analog is not None and module.alarm is not None
        assert module.analog.cell_voltages == pack.cell_voltages
        assert module.identity.serial == model.serial
        assert module.identity.model == model.preset.device_name and module.identity.manufacturer == "Pylon"
        assert module.identity.firmware == "0.6.5"
        cells = pack.cell_voltages
        assert module.cell_min == min(cells) and module.cell_max == max(cells)
        assert cells[module.cell_min_index - 1] == min(cells) and cells[module.cell_max_index - 1] == max(cells)
        assert module.cell_delta == round(max(cells) - min(cells), 3)
        assert module.power == pack.power
    stack = reading.stacks[0]
    packs = [MODEL.modules[n].pack() for n in (2, 3, 4)]
    assert stack.modules_online == 3
    assert stack.current == round(sum(p.current for p in packs), 1)
    assert stack.soc == round(100 * sum(p.remaining_capacity for p in packs) / sum(p.total_capacity for p in packs), 1)
    cells = [v for p in packs for v in p.cell_voltages]
    assert stack.cell_delta == round(max(cells) - min(cells), 3)


def test_a_silent_module_stays_known_and_is_offline_in_the_reading() -> None:
    source = poller("sim://?stack=US3000C*3&frozen=1&pace=0")
    assert all(module.online for module in source.cycle().modules)
    source.stacks[0].turn_off(2, allow_write=True)
    reading = source.cycle()
    silent = reading.modules[1]
    assert (silent.module, silent.online, silent.analog) == (2, False, None)
    assert "no reply from module 2" in (silent.error or "")
    assert silent.identity.serial is not None  # still known by its serial
    assert reading.stacks[0].modules_online == 2


@pytest.mark.parametrize("seed", [1, 2])
def test_under_faults_every_module_gets_nine_polls_in_ten(seed: int) -> None:
    stack = Stack(Link(f"sim://?stack=US3000C*4&frozen=1&pace=0&no_reply=0.15&corrupt=0.1&seed={seed}"))
    source = Poller([stack], rescan=3600)
    stack.modules = [1]  # as if the start-up scan had missed the others
    source.next_rescan = 0.0  # the re-scan is due at the first cycle
    polls = {module: 0 for module in (1, 2, 3, 4)}
    cycles = 30
    for _ in range(cycles):
        for module in source.cycle().modules:
            polls[module.module] += module.online
    assert all(count >= 0.9 * cycles for count in polls.values()), polls


def test_a_group_is_read_with_one_request_once_fanout_is_proven(sim_port: str, caplog) -> None:

    from pylonbus.logs import FRAME

    fanout = Poller([Stack(Link(sim_port), 0)], rescan=3600)
    fanout.scan()
    first = fanout.cycle()  # each module once, compared with the master's fan-out packs
    assert fanout.proven == {("pylontech", 0): [1, 2, 3, 4]}
    with caplog.at_level(FRAME, logger="pylonbus.link.link"):
        second = fanout.cycle()
    assert sum(record.getMessage().startswith("TX ") for record in caplog.records) == 2  # 0x42 and 0x44 to module 1
    for one, other in zip(first.modules, second.modules, strict=True):  # frozen: the same values
        assert one.analog is not None and other.analog is not None
        assert other.analog.cell_voltages == one.analog.cell_voltages and other.analog.cycles == one.analog.cycles
        assert one.alarm is not None and other.alarm is not None and other.alarm.status1 == one.alarm.status1
        assert other.identity == one.identity


def test_fanout_leaves_out_a_silent_module_and_the_group_is_read_module_by_module() -> None:
    stacker = poller("sim://?stack=US3000C*3&frozen=1&pace=0")
    stacker.cycle()
    assert stacker.proven == {("pylontech", 0): [1, 2, 3]}
    stacker.stacks[0].turn_off(2, allow_write=True)  # the master's fan-out now has two packs
    reading = stacker.cycle()
    assert [m.online for m in reading.modules] == [True, False, True]
    assert stacker.silent == {("pylontech", 0, 2)}


def test_no_fanout_reads_each_module() -> None:
    link = Link("sim://?stack=US3000C*2&frozen=1&pace=0")
    each = Poller([Stack(link, 0)], rescan=3600, fanout=False)
    each.scan()
    each.cycle()
    each.cycle()
    assert each.proven == {}


def test_a_group_given_up_on_for_fanout_is_tried_again_after_a_rescan() -> None:
    stacker = poller("sim://?stack=US3000C*2&frozen=1&pace=0")
    stacker.no_fanout.add(("pylontech", 0))  # as after a fan-out request lost on a noisy line
    stacker.cycle()
    assert stacker.proven == {}
    stacker.rescan()
    stacker.cycle()
    assert stacker.proven == {("pylontech", 0): [1, 2]}


def test_a_rescan_probes_each_empty_address_once_and_keeps_the_fanout_proof(caplog) -> None:
    from pylonbus.logs import FRAME

    stacker = poller("sim://?stack=US3000C*2&frozen=1&pace=0")
    stacker.cycle()
    assert stacker.proven == {("pylontech", 0): [1, 2]}
    with caplog.at_level(FRAME, logger="pylonbus.link.link"):
        stacker.rescan()
        stacker.cycle()
    sent = [record.getMessage()[3:] for record in caplog.records if record.getMessage().startswith("TX ")]
    assert [frame[3:5] for frame in sent[:12]] == [f"{module + 1:02X}" for module in range(3, 15)]  # 0x4F each
    assert len(sent) == 12 + 2  # then the group's fan-out 0x42 and 0x44, not a proof module by module
    assert stacker.proven == {("pylontech", 0): [1, 2]}


def test_a_rescan_due_in_the_poll_is_spread_over_two_cycles(caplog) -> None:
    from pylonbus.logs import FRAME

    stacker = poller("sim://?stack=US3000C*2&frozen=1&pace=0")
    stacker.cycle()
    stacker.next_rescan = 0.0
    probes = []
    for _ in range(3):
        caplog.clear()
        with caplog.at_level(FRAME, logger="pylonbus.link.link"):
            stacker.cycle()
        probes.append(sum(record.getMessage()[10:12] == "4F" for record in caplog.records))
    assert probes == [6, 6, 0]
