"""PKCS#11 specifics against SoftHSM2: object attributes, naming, login, foreign objects."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from security.keystore import Algorithm, BackendError, KeyUsage

if TYPE_CHECKING:
    from collections.abc import Iterator

    from security.keystore.pkcs11_store import Pkcs11KeyStore
    from tests.security.conftest import SoftHsmToken

pytestmark = pytest.mark.integration


@pytest.fixture
def hsm(softhsm_token: SoftHsmToken) -> Iterator[Pkcs11KeyStore]:
    """A store on the session's SoftHSM2 token, emptied afterwards."""
    from security.keystore.pkcs11_store import Pkcs11KeyStore  # noqa: PLC0415  # needs the binding

    store = Pkcs11KeyStore.open(
        softhsm_token.module, token_label=softhsm_token.label, user_pin=softhsm_token.user_pin
    )
    try:
        yield store
    finally:
        for info in store.list_keys():
            store._destroy(info)
        store.close()


def test_secret_keys_are_sensitive_and_not_extractable(hsm: Pkcs11KeyStore) -> None:
    """Generated and imported secret keys are token objects the token will not reveal."""
    import pkcs11  # noqa: PLC0415
    from pkcs11 import Attribute, ObjectClass  # noqa: PLC0415

    hsm.generate_key("data", Algorithm.AES_256, KeyUsage.ENCRYPT)
    hsm.import_key("zpk", Algorithm.TDES_2KEY, KeyUsage.PIN, bytes(range(1, 17)))
    hsm.generate_key("sig", Algorithm.EC_P256, KeyUsage.SIGN)
    session = hsm._session
    objects = list(session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY}))
    objects += list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}))
    assert len(objects) == 3
    for obj in objects:
        assert obj[Attribute.TOKEN] is True
        assert obj[Attribute.SENSITIVE] is True
        assert obj[Attribute.EXTRACTABLE] is False
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            _ = obj[Attribute.VALUE]


def test_key_ids_and_versions_map_to_label_and_id(hsm: Pkcs11KeyStore) -> None:
    """CKA_LABEL carries the key id and CKA_ID the version and usage."""
    from pkcs11 import Attribute, ObjectClass  # noqa: PLC0415

    hsm.generate_key("tpk-0001", Algorithm.TDES_3KEY, KeyUsage.PIN)
    hsm.rotate_key("tpk-0001")
    ids = sorted(
        bytes(obj[Attribute.ID])
        for obj in hsm._session.get_objects(
            {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: "tpk-0001"}
        )
    )
    assert ids == [b"v1.pin", b"v2.pin"]


def test_foreign_objects_are_ignored(hsm: Pkcs11KeyStore) -> None:
    """Objects of other applications on the token are not listed nor touched."""
    from pkcs11 import KeyType  # noqa: PLC0415

    foreign = hsm._session.generate_key(
        KeyType.AES, 128, label="someone-else", id=b"\x01\x02", store=True
    )
    try:
        hsm.generate_key("ours", Algorithm.AES_128, KeyUsage.ENCRYPT)
        assert [i.key_id for i in hsm.list_keys()] == ["ours"]
    finally:
        foreign.destroy()


def test_two_stores_share_the_login(softhsm_token: SoftHsmToken, hsm: Pkcs11KeyStore) -> None:
    """Closing one store does not log out another on the same token."""
    from security.keystore.pkcs11_store import Pkcs11KeyStore  # noqa: PLC0415

    hsm.generate_key("data", Algorithm.AES_256, KeyUsage.ENCRYPT)
    other = Pkcs11KeyStore.open(
        softhsm_token.module, token_label=softhsm_token.label, user_pin=softhsm_token.user_pin
    )
    other.close()
    sealed = hsm.encrypt("data", b"still logged in")
    assert hsm.decrypt(sealed) == b"still logged in"


def test_wrong_pin_and_unknown_token_are_backend_errors(
    softhsm_token: SoftHsmToken, hsm: Pkcs11KeyStore
) -> None:
    """A wrong user PIN or token label raises BackendError naming the cause, not the PIN."""
    from security.keystore.pkcs11_store import Pkcs11KeyStore  # noqa: PLC0415

    with pytest.raises(BackendError) as caught:
        Pkcs11KeyStore.open(
            softhsm_token.module, token_label=softhsm_token.label, user_pin="000000"
        )
    assert caught.value.cause == "PinIncorrect"
    assert "000000" not in str(caught.value)
    with pytest.raises(BackendError) as caught:
        Pkcs11KeyStore.open(softhsm_token.module, token_label="no-such-token", user_pin="1")  # noqa: S106
    assert caught.value.cause == "NoSuchToken"
    assert hsm.list_keys() == []
