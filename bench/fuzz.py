"""Fuzz every decoder of ``protocols/`` with a million inputs: their error contract holds.

The decoders, their own error types, their seed corpora and the re-encode
checks are the table in ``tests/protocols/decoders.py`` (as in
``tests/protocols/test_decoder_fuzz.py``). Each decoder gets an equal share of
``--inputs``: seeds of its format mutated by ``Decoder.mutate`` (bytes flipped,
spliced and cut; JSON values swapped for lone surrogates, numbers beyond a
float, deep nesting; XML with odd declared encodings, references and markup)
and, one input in ten, random bytes. The inputs follow from ``--seed`` alone.
Each one is judged by ``tests.protocols.decoders.run``: decoded (and encoded again),
refused with the decoder's own error, or a contract breach, which is printed
with the input in hex and the integer ``Decoder.mutate`` made it from. Warnings
count as breaches, as under pytest. Exit status 1 on any breach.

Rate and baseline: inputs are made in batches, timed apart from decoding. The
baseline, measured in the same run, is the cost of making the inputs alone;
the ratio printed is decoding time / making time (the decoder and its re-encode
check against the mutator that feeds it). The rate is inputs decoded per
second of decoding time.

Usage: ``.venv/bin/python bench/fuzz.py [--inputs 1000000] [--seed 1] [--only NAME]``
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.protocols.decoders
from tests.protocols.decoders import DECODERS, Breach, Decoder, run

_BATCH = 1000  # inputs made, then decoded, at a time
_SHOWN_BREACHES = 5  # per decoder; the rest are counted


@dataclass
class Tally:
    """What one decoder made of its inputs.

    Attributes:
        name: The decoder.
        inputs: Inputs fed.
        decoded: Inputs decoded and encoded again.
        refused: Inputs refused with the decoder's own error.
        breaches: Contract breaches.
        make_seconds: Time spent making the inputs (the baseline).
        decode_seconds: Time spent decoding and checking them.
    """

    name: str
    inputs: int = 0
    decoded: int = 0
    refused: int = 0
    breaches: int = 0
    make_seconds: float = 0.0
    decode_seconds: float = 0.0

    @property
    def ratio(self) -> float:
        """Decoding time over making time."""
        return self.decode_seconds / self.make_seconds if self.make_seconds else 0.0

    @property
    def rate(self) -> float:
        """Inputs decoded per second of decoding time."""
        return self.inputs / self.decode_seconds if self.decode_seconds else 0.0


def fuzz(decoder: Decoder, count: int, rng: random.Random) -> Tally:
    """Feed ``count`` inputs to ``decoder``; print each breach as it is found."""
    tally = Tally(decoder.name)
    while tally.inputs < count:
        size = min(_BATCH, count - tally.inputs)
        start = time.perf_counter()
        seeds = [rng.getrandbits(64) for _ in range(size)]
        batch = [decoder.mutate(seed) for seed in seeds]
        made = time.perf_counter()
        outcomes: list[bool | None] = []
        for seed, data in zip(seeds, batch, strict=True):
            try:
                outcomes.append(run(decoder, data))
            except Breach as breach:
                outcomes.append(None)
                tally.breaches += 1
                if tally.breaches <= _SHOWN_BREACHES:
                    print(f"BREACH {breach.decoder} ({breach.stage}): {breach.error!r}")
                    print(f"  input: the row's mutate({seed}), hex {data.hex()}")
        tally.make_seconds += made - start
        tally.decode_seconds += time.perf_counter() - made
        tally.inputs += size
        tally.decoded += outcomes.count(True)
        tally.refused += outcomes.count(False)
    return tally


def _print_row(tally: Tally) -> None:
    print(
        f"{tally.name:<42} {tally.inputs:>9,} {tally.decoded:>9,} {tally.refused:>9,}"
        f" {tally.breaches:>8,} {tally.rate:>10,.0f} {tally.ratio:>7.2f}"
    )


def main() -> int:
    """Fuzz the table; print a row per decoder and the totals; 1 on any breach."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="inputs in all")
    parser.add_argument("--seed", type=int, default=1, help="seed of the input stream")
    parser.add_argument("--only", default="", help="only decoders whose name holds this")
    args = parser.parse_args()
    warnings.simplefilter("error")  # as pytest runs (filterwarnings = error)
    decoders = [d for d in DECODERS if args.only in d.name]
    if not decoders:
        parser.error(f"no decoder name holds {args.only!r}")
    each = -(-args.inputs // len(decoders))
    rng = random.Random(args.seed)
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.platform()}, {os.cpu_count()} CPUs")
    print(f"{len(decoders)} decoders x {each:,} inputs, seed {args.seed}")
    print(
        f"{'decoder':<42} {'inputs':>9} {'decoded':>9} {'refused':>9} {'breaches':>8}"
        f" {'inputs/s':>10} {'ratio':>7}"
    )
    total = Tally("total")
    start = time.perf_counter()
    for decoder in decoders:
        tally = fuzz(decoder, each, rng)
        _print_row(tally)
        for name in ("inputs", "decoded", "refused", "breaches", "make_seconds", "decode_seconds"):
            setattr(total, name, getattr(total, name) + getattr(tally, name))
    _print_row(total)
    print(
        f"wall {time.perf_counter() - start:.1f} s; making the inputs (baseline)"
        f" {total.make_seconds:.1f} s, {total.inputs / total.make_seconds:,.0f} inputs/s;"
        f" decoding {total.decode_seconds:.1f} s; ratio decoding/making {total.ratio:.2f}"
    )
    return 1 if total.breaches else 0


if __name__ == "__main__":
    sys.exit(main())
