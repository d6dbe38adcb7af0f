"""One name per concept: no class name is defined twice in the shipped packages.

An ``ast`` walk over every module; a name defined in two places is either one
concept written twice (fold it) or two concepts under one name (rename one).
The allow-list says, for each repeat that stays, why.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).parents[1]
PACKAGES: Final = ("protocols", "security", "devices", "production", "gateway", "simulators")

#: Repeats that stay, and why.
ALLOWED: Final[dict[str, str]] = {
    # Private helpers, each local to its module.
    "_Entry": "private to the key store and to the status cache",
    "_Frozen": "private pydantic base of each settings module",
    "_Section": "private pydantic base of each settings module",
    # Each wire protocol's own vocabulary, under its package's name.
    "Request": "a platform item, a printer frame, a PIN pad frame: each protocol's own",
    "Status": "a platform answer's status, a PIN pad status frame: each protocol's own",
    "Timeouts": "the printer's and the PIN pad's command timeouts",
    "ClientState": "each sans-I/O link's state machine (printer, PIN pad)",
    "Completed": "each sans-I/O link's event (printer, PIN pad)",
    "Unsolicited": "each sans-I/O link's event (printer, PIN pad)",
    "NeedData": "each codec's event (printer, PIN pad): not yet folded into one helper",
    "Discarded": "each codec's event (printer, PIN pad): not yet folded into one helper",
    "RequestDecoder": "each codec's decoder (printer, PIN pad)",
    # A simulator's stand-in for the real part's concept.
    "Fault": "the printer simulator's and the PIN pad simulator's injected faults",
    "KeyService": "production's port and the platform simulator's implementation of it",
    "VirtualCard": "the in-process encoder's card and the vpcd simulator's",
    "StationConfig": "the daemon's [[issuance.stations]] and the station simulator's",
}


def _definitions() -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    found[node.name].append(str(path.relative_to(ROOT)))
    return found


def test_no_class_name_is_defined_twice() -> None:
    """Every class name outside the allow-list is defined once."""
    repeated = {name: where for name, where in _definitions().items() if len(where) > 1}
    assert {n: w for n, w in repeated.items() if n not in ALLOWED} == {}


def test_the_allow_list_holds_only_real_repeats() -> None:
    """A name folded or renamed leaves the allow-list too."""
    definitions = _definitions()
    assert [name for name in ALLOWED if len(definitions.get(name, [])) < 2] == []
