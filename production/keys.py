"""A key service computing cryptograms locally with :mod:`security.cardcrypto`.

For the demo and tests, where the issuer's master keys are development keys.
In production the platform's key service (加密机) computes the cryptogram and
the master keys never reach the branch; ``gateway`` wires that one instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from security.cardcrypto import diversify_key, external_auth_cryptogram

if TYPE_CHECKING:
    from production.ports import KeyRequest
    from security.cardcrypto import CardMasterKeys

__all__ = ["LocalKeyService"]


@dataclass(frozen=True, slots=True)
class LocalKeyService:
    """EXTERNAL AUTHENTICATE cryptograms from master keys held in memory.

    Attributes:
        masters: The issuer's master keys.
    """

    masters: CardMasterKeys = field(repr=False)

    async def external_authenticate(self, request: KeyRequest, challenge: bytes) -> bytes:
        """Diversify the card's key from its identification code, encrypt the challenge.

        Raises:
            CardCryptoError: A malformed card identification code or challenge.
        """
        key = diversify_key(self.masters.external_auth, request.card_id_code, request.algorithm)
        return external_auth_cryptogram(key, challenge, request.algorithm)
