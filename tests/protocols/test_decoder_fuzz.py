"""Hypothesis over every decoder of ``protocols/`` (the table in ``tests/protocols/decoders.py``).

Each decoder gets at least :data:`INPUTS_PER_DECODER` inputs: Hypothesis's own
bytes, and seeds of the decoder's format mutated by ``Decoder.mutate`` (bytes
flipped and spliced; JSON values swapped for lone surrogates, numbers beyond a
float, deep nesting; XML with odd declared encodings, references and markup).
An example is a batch of :data:`BATCH` inputs: Hypothesis spends about 0.3 ms
on an example whatever its size, and one input an example would make this file
take minutes. The test command keeps to a few thousand inputs a decoder so the
whole suite stays within its time budget; ``bench/fuzz.py`` runs the same table
for a million inputs (docs/performance.md).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.protocols.decoders import DECODERS, Decoder, run

#: Inputs every decoder gets at the least.
INPUTS_PER_DECODER = 4_000
#: Inputs in one Hypothesis example.
BATCH = 16
#: Longest input Hypothesis draws as plain bytes (the mutated seeds may be longer).
MAX_DRAWN = 256


def _inputs(decoder: Decoder) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=MAX_DRAWN), st.integers(0, 2**64 - 1).map(decoder.mutate))


@pytest.mark.parametrize("decoder", DECODERS, ids=[d.name for d in DECODERS])
def test_decoder_raises_only_its_errors_and_reencodes(decoder: Decoder) -> None:
    """On any input only the decoder's own errors escape, and what decodes encodes again."""
    tried = 0

    @settings(
        max_examples=INPUTS_PER_DECODER // BATCH,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(_inputs(decoder), min_size=BATCH, max_size=BATCH))
    def check(batch: list[bytes]) -> None:
        nonlocal tried
        for data in batch:
            run(decoder, data)  # raises Breach, with the input in hex
        tried += len(batch)

    check()
    assert tried >= INPUTS_PER_DECODER


def test_table_covers_every_protocol() -> None:
    """The table has a row for each protocol package and no name twice."""
    names = [d.name for d in DECODERS]
    assert len(names) == len(set(names))
    families = {name.split(".")[0] for name in names}
    expected = {"apdu", "bank", "envelope", "mqtt", "pinpad", "platform", "printer", "sscard"}
    assert families == expected
