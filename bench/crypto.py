"""Crypto throughput: SM2 candidates and envelopes, against ECDSA P-256 in the same run.

Run: ``.venv/bin/python bench/crypto.py [--seconds 1.0]``. Each figure is the best
of three timed rounds of ``--seconds`` each (one round for pure-Python
libraries) and is also printed as a ratio to the baseline, ECDSA P-256
sign + verify from ``cryptography``, measured first in the same process.
SM2 candidates that are not installed are listed as such; only ``tongsuopy``
is a project dependency (see docs/performance.md "Crypto").
"""

from __future__ import annotations

import argparse
import importlib
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from security.envelope import (
    DictEnvelopeKeys,
    EnvelopeOpener,
    EnvelopeSealer,
    SenderIdentity,
)
from security.suites import GM, INTL, CryptoSuite

MESSAGE = os.urandom(256)
USER_ID = b"1234567812345678"
BODY = b'{"op":"status","card":"' + b"0" * 200 + b'"}'


@dataclass(frozen=True)
class Candidate:
    """One SM2 implementation to time."""

    name: str
    kind: str
    make: Callable[[], Callable[[], object]]


def _module(name: str) -> Any:  # noqa: ANN401 - third-party, untyped
    return importlib.import_module(name)


def _ecdsa_p256() -> Callable[[], object]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    algorithm = ec.ECDSA(hashes.SHA256())

    def pair() -> None:
        public.verify(key.sign(MESSAGE, algorithm), MESSAGE, algorithm)

    return pair


def _tongsuopy() -> Callable[[], object]:
    tec = _module("tongsuopy.crypto.asymciphers.ec")
    th = _module("tongsuopy.crypto.hashes")
    key = tec.generate_private_key(tec.SM2())
    public = key.public_key()

    def pair() -> None:
        public.verify(key.sign(MESSAGE, tec.ECDSA(th.SM3())), MESSAGE, tec.ECDSA(th.SM3()))

    return pair


def _suite_gm() -> Callable[[], object]:
    key = GM.generate_signing_key()
    return lambda: GM.verify(key.public_key, GM.sign(key, MESSAGE), MESSAGE)


def _gmalglib() -> Callable[[], object]:
    sm2 = _module("gmalglib.sm2")
    private, public = sm2.SM2().generate_keypair()
    signer, verifier = sm2.SM2(sk=private, uid=USER_ID), sm2.SM2(pk=public, uid=USER_ID)
    return lambda: verifier.verify(MESSAGE, signer.sign(MESSAGE))


def _gmssl_pyx() -> Callable[[], object]:
    lib = _module("gmssl_pyx")
    public, private = lib.sm2_key_generate()
    return lambda: lib.sm2_verify(public, MESSAGE, lib.sm2_sign(private, public, MESSAGE))


def _gmssl_fast() -> Callable[[], object]:
    key = _module("gmssl_fast").SM2.generate()
    return lambda: key.verify(MESSAGE, key.sign(MESSAGE))


def _smcryptopy() -> Callable[[], object]:
    sm2 = _module("smcryptopy.sm2")
    private, public = sm2.gen_keypair()
    return lambda: sm2.verify(USER_ID, MESSAGE, sm2.sign(USER_ID, MESSAGE, private), public)


def _gmssl() -> Callable[[], object]:
    sm2 = _module("gmssl.sm2")
    private = GM.generate_signing_key()
    crypt = sm2.CryptSM2(
        private_key=GM.signing_key_bytes(private).hex(),
        public_key=private.public_key.encoded[1:].hex(),
    )
    return lambda: crypt.verify_with_sm3(crypt.sign_with_sm3(MESSAGE), MESSAGE)


def _pysmx() -> Callable[[], object]:
    sm2 = _module("pysmx.SM2")
    keys = sm2.generate_keypair()
    private, public = keys.privateKey, keys.publicKey

    def pair() -> None:
        nonce = os.urandom(32).hex()
        signature = sm2.Sign(MESSAGE, private, nonce, 64, uid=USER_ID)
        sm2.Verify(signature, MESSAGE, public, 64, uid=USER_ID)

    return pair


CANDIDATES = [
    Candidate("tongsuopy (chosen)", "native: Tongsuo/OpenSSL", _tongsuopy),
    Candidate("security.suites GM", "tongsuopy + r||s codec", _suite_gm),
    Candidate("gmalglib", "native: C, sdist only", _gmalglib),
    Candidate("gmssl-pyx", "native: GmSSL 3", _gmssl_pyx),
    Candidate("gmssl-fast", "native: GmSSL 3", _gmssl_fast),
    Candidate("smcryptopy", "native: Rust", _smcryptopy),
    Candidate("gmssl", "pure Python", _gmssl),
    Candidate("snowland-smx (pysmx)", "pure Python", _pysmx),
]


def rate(operation: Callable[[], object], seconds: float, rounds: int = 3) -> float:
    """Best operations per second over ``rounds`` rounds of ``seconds`` each."""
    operation()  # warm up
    best = 0.0
    for _ in range(rounds):
        done = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            operation()
            done += 1
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, done / (now - start))
    return best


def _envelope_round_trip(suite: CryptoSuite) -> Callable[[], object]:
    identity = SenderIdentity(
        sender="440100-B001",
        key_id="branch-sig",
        key_version=1,
        signing_key=suite.generate_signing_key(),
        aead_key=os.urandom(suite.aead_key_size),
    )
    keys = DictEnvelopeKeys()
    keys.add(identity)
    sealer = EnvelopeSealer(identity)
    opener = EnvelopeOpener("PLATFORM-44", keys)
    now = datetime.now(UTC)
    return lambda: opener.open(sealer.seal("PLATFORM-44", "M-1", BODY, now), now)


def main() -> None:
    """Time every candidate and both envelope suites; print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one round")
    seconds = parser.parse_args().seconds
    baseline = rate(_ecdsa_p256(), seconds)
    print(f"{'what':<34} {'kind':<26} {'per second':>11} {'vs P-256':>9}")
    label, kind = "ECDSA P-256 sign+verify (baseline)", "cryptography"
    print(f"{label:<34} {kind:<26} {baseline:>11,.0f} {1:>9.3f}")
    for candidate in CANDIDATES:
        try:
            operation = candidate.make()
        except ImportError:
            print(f"{'SM2 ' + candidate.name:<34} {candidate.kind:<26} {'not installed':>11}")
            continue
        rounds = 1 if candidate.kind == "pure Python" else 3
        value = rate(operation, seconds, rounds)
        label = "SM2 " + candidate.name
        print(f"{label:<34} {candidate.kind:<26} {value:>11,.0f} {value / baseline:>9.3f}")
    for suite in (GM, INTL):
        value = rate(_envelope_round_trip(suite), seconds)
        label = f"envelope seal+open ({suite.name})"
        kind = f"{len(BODY)}-byte body"
        print(f"{label:<34} {kind:<26} {value:>11,.0f} {value / baseline:>9.3f}")


if __name__ == "__main__":
    main()
