"""The simulated platform pushes notices to a branch: losses, online applications.

A holder reports a loss by telephone (12333): the province records it, then
tells the branch that holds the card. :func:`push_loss_notice` does both: it
moves the card in the province's registry and POSTs one envelope, sealed by
the province's identity and addressed to the branch, holding one
``loss_notice`` item in the chosen dialect; it opens the branch's sealed
answer and returns the item's result. :func:`push_online_application` sends a
citizen's online application to the branch they chose for verification. See
docs/protocols/platform.md ("Notices from the platform").
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Final

import aiohttp

from protocols.platform import PlatformOperation, Request, Result
from security.envelope import EnvelopeOpener, EnvelopeSealer
from simulators.platform.simulator import DIALECTS, platform_name

if TYPE_CHECKING:
    import ssl
    from datetime import datetime

    from security.envelope import EnvelopeKeys
    from simulators.platform.simulator import PlatformSimulator

__all__ = ["NoticeRefusedError", "push_loss_notice", "push_online_application"]

_TIMEOUT: Final = aiohttp.ClientTimeout(total=10)
_REFUSED_HEADER: Final = "X-Envelope-Refused"


class NoticeRefusedError(Exception):
    """The branch refused the envelope or the document.

    Attributes:
        status: The HTTP status.
        code: The envelope refusal code, when there was one.
    """

    def __init__(self, status: int, code: str) -> None:
        """Keep the status and refusal code."""
        super().__init__(f"branch answered {status} {code}".strip())
        self.status = status
        self.code = code


async def push_loss_notice(  # noqa: PLR0913 - one notice's parts, keyword-only
    simulator: PlatformSimulator,
    *,
    province: str,
    url: str,
    branch: str,
    branch_keys: EnvelopeKeys,
    card_number: str,
    loss_type: str | None,
    freeze_bank: bool = False,
    source: str = "12333",
    dialect: str = "json",
    message_id: str | None = None,
    now: datetime,
    ssl_context: ssl.SSLContext | None = None,
) -> Result:
    """Record a loss (``loss_type`` ``"2"``/``"4"``) or its cancellation (``None``) and push it.

    Args:
        simulator: The running simulator (its province and identity are used).
        province: The province that sends the notice (the branch's own platform).
        url: The branch's notice endpoint (``.../v1/platform/notices``).
        branch: The branch's envelope name (its ``[branch] id``).
        branch_keys: Where the branch's verify and AEAD keys are (its answer is opened with them).
        card_number: AAZ500.
        loss_type: ``"2"`` formal, ``"4"`` temporary, ``None`` cancel the loss.
        freeze_bank: The bank account is frozen (unfrozen) too.
        source: Where the holder reported it.
        dialect: ``json`` or ``soap``.
        message_id: The item's message id (a copy reuses it); a new one by default.
        now: Envelope time.
        ssl_context: Client TLS context when the branch serves HTTPS.

    Raises:
        NoticeRefusedError: The branch refused the envelope or document.
    """
    registry = simulator.provinces[province]
    card = registry.cards.get(card_number)
    if card is not None:
        card.aaz502 = loss_type or "1"
    fields = {
        "AAZ500": card_number,
        "noticeType": "loss" if loss_type else "unloss",
        "freezeBank": "1" if freeze_bank else "0",
        "source": source,
    }
    if loss_type:
        fields["lossType"] = loss_type
    if card is not None and card.aaz501:
        fields["AAZ501"] = card.aaz501
    return await _push(
        simulator, province=province, url=url, branch=branch, branch_keys=branch_keys,
        item=Request(PlatformOperation.LOSS_NOTICE, message_id or uuid.uuid4().hex, fields=fields),
        dialect=dialect, now=now, ssl_context=ssl_context,
    )  # fmt: skip


async def push_online_application(  # noqa: PLR0913 - one application's parts, keyword-only
    simulator: PlatformSimulator,
    *,
    province: str,
    url: str,
    branch: str,
    branch_keys: EnvelopeKeys,
    online_ref: str,
    ssn: str,
    name: str,
    applied_on: str,
    phone: str | None = None,
    dialect: str = "json",
    message_id: str | None = None,
    now: datetime,
    ssl_context: ssl.SSLContext | None = None,
) -> Result:
    """Send the branch a citizen's online application (线上申请) for verification there.

    Args:
        simulator: The running simulator (its province's identity seals the envelope).
        province: The province that sends it (the branch's own platform).
        url: The branch's notice endpoint (``.../v1/platform/notices``).
        branch: The branch's envelope name.
        branch_keys: Where the branch's verify and AEAD keys are.
        online_ref: The platform's number of the application.
        ssn: The applicant's social security number (AAC002).
        name: The applicant's name (AAC003).
        applied_on: The day it was made online, ``YYYY-MM-DD``.
        phone: The applicant's phone (AAE005), if given.
        dialect: ``json`` or ``soap``.
        message_id: The item's message id (a copy reuses it); a new one by default.
        now: Envelope time.
        ssl_context: Client TLS context when the branch serves HTTPS.

    Raises:
        NoticeRefusedError: The branch refused the envelope or document.
    """
    fields = {"onlineId": online_ref, "AAC002": ssn, "AAC003": name, "appliedOn": applied_on}
    if phone is not None:
        fields["AAE005"] = phone
    item = Request(
        PlatformOperation.ONLINE_APPLICATION, message_id or uuid.uuid4().hex, fields=fields
    )
    return await _push(
        simulator, province=province, url=url, branch=branch, branch_keys=branch_keys,
        item=item, dialect=dialect, now=now, ssl_context=ssl_context,
    )  # fmt: skip


async def _push(  # noqa: PLR0913 - one envelope's parts, keyword-only
    simulator: PlatformSimulator,
    *,
    province: str,
    url: str,
    branch: str,
    branch_keys: EnvelopeKeys,
    item: Request,
    dialect: str,
    now: datetime,
    ssl_context: ssl.SSLContext | None,
) -> Result:
    """Seal one item to the branch, POST it, open the answer: the item's result."""
    codec = DIALECTS[dialect]
    document = codec.encode_requests([item])
    identity = simulator.identities[province]
    sealed = EnvelopeSealer(identity).seal(branch, item.message_id, document, now)
    connector = aiohttp.TCPConnector(ssl=ssl_context or False)
    async with (
        aiohttp.ClientSession(connector=connector, timeout=_TIMEOUT) as http,
        http.post(
            url, data=sealed, headers={"Content-Type": "application/octet-stream"}
        ) as response,
    ):
        body = await response.read()
        if response.status != 200:  # noqa: PLR2004 - HTTP OK
            raise NoticeRefusedError(response.status, response.headers.get(_REFUSED_HEADER, ""))
    opened = EnvelopeOpener(platform_name(province), branch_keys).open(body, now)
    (result,) = codec.decode_results(opened.body)
    return result
