"""Key stores: named, versioned keys that never leave the store in clear.

Two backends share one interface, :class:`KeyStore`:

* :class:`SoftwareKeyStore` (``security.keystore.software``): keys in a file
  encrypted at rest, for the demo and unit tests;
* ``Pkcs11KeyStore`` (``security.keystore.pkcs11_store``): keys in a PKCS#11
  token (an HSM in production, SoftHSM2 in tests). It is not imported here so
  that importing this package never loads a PKCS#11 library.

PIN blocks travel as :class:`EncryptedPinBlock` objects; only a key store sees
a clear PIN. See docs/keystore.md.
"""

from security.keystore.base import KeyStore
from security.keystore.cardpin import CardPinCommand
from security.keystore.errors import (
    BackendError,
    DecryptionError,
    InsecurePermissionsError,
    InvalidKeyIdError,
    InvalidKeyMaterialError,
    KeyExistsError,
    KeyNotFoundError,
    KeyStateError,
    KeyStoreConfigError,
    KeyStoreCorruptError,
    KeyStoreError,
    KeyUsageError,
    MasterKeyError,
    UnsupportedAlgorithmError,
    VerificationError,
)
from security.keystore.model import (
    Algorithm,
    Ciphertext,
    EncryptedPinBlock,
    KeyInfo,
    KeyUsage,
    Mac,
    PinBlockFormat,
    Signature,
    WrappedKey,
)
from security.keystore.software import MASTER_KEY_ENV, MasterKey, SoftwareKeyStore
from security.pinblock import PinBlockError, PinBlockFault

__all__ = [
    "MASTER_KEY_ENV",
    "Algorithm",
    "BackendError",
    "CardPinCommand",
    "Ciphertext",
    "DecryptionError",
    "EncryptedPinBlock",
    "InsecurePermissionsError",
    "InvalidKeyIdError",
    "InvalidKeyMaterialError",
    "KeyExistsError",
    "KeyInfo",
    "KeyNotFoundError",
    "KeyStateError",
    "KeyStore",
    "KeyStoreConfigError",
    "KeyStoreCorruptError",
    "KeyStoreError",
    "KeyUsage",
    "KeyUsageError",
    "Mac",
    "MasterKey",
    "MasterKeyError",
    "PinBlockError",
    "PinBlockFault",
    "PinBlockFormat",
    "Signature",
    "SoftwareKeyStore",
    "UnsupportedAlgorithmError",
    "VerificationError",
    "WrappedKey",
]
