"""`--bms auto`: which BMS family answers on a link. Each family's analog request goes to module 1 of the group,
Pylontech's first; the first reply that decodes as that family's, INFO consumed exactly, names it. Families
that share VER and CID1 (Pylontech and Seplos) are told apart that way: the other's layout does not fit."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..errors import LinkError, ProtocolError
from ..options import BadValue
from ..protocol import families

if TYPE_CHECKING:
    from ..protocol.family import Family
    from .link import Link

log = logging.getLogger(__name__)

AUTO = "auto"  # what -d and --bms take for "find out"
PROBE_TRIES = 2  # a reply lost on a noisy line must not make a family look absent


def bms_name(text: str) -> str:
    """A family's name as `--bms` takes it, or `auto`."""
    if text == AUTO or text in families.names():
        return text
    raise BadValue(f"unknown BMS family {text!r}; known: {', '.join(families.names())} or {AUTO}")


def detect(link: Link, group: int = 0, module: int = 1) -> Family[Any, Any] | None:
    """The family whose analog request `module` of `group` answers with a reply of that family; None when
    no family's does."""
    from ..protocol.family import ANALOG  # here: the settings (every --help) read this module's `bms_name`

    for name in (families.DEFAULT, *(name for name in families.names() if name != families.DEFAULT)):
        family = families.family(name)
        try:
            family.address(group, module)
        except ValueError:
            continue  # the family has no such group or module
        try:
            link.query(family.roles[ANALOG], group, module, family=family, tries=PROBE_TRIES, reopen=False)
        except (LinkError, ProtocolError) as error:  # an error code proves nothing: another family may send it
            log.info("--bms auto: not %s on %s: %s", family.title, link.port, error)
            continue
        return family
    return None
