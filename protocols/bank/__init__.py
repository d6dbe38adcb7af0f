"""Bank core messages (sans-I/O): ESB-style JSON documents of request items.

The items are the platform's :class:`~protocols.platform.messages.Request` and
:class:`~protocols.platform.messages.Result`; the bank's own vocabulary
(``txCode``, ``serialNo``, ``retCode``, ``retMsg``) and operations are here::

    {
        "requests": [
            {
                "txCode": "SSC001",
                "serialNo": "M1",
                "repeat": "0",
                "data": {"AAC002": "...", "AAZ500": "..."},
            }
        ]
    }
    {
        "responses": [
            {
                "serialNo": "M1",
                "retCode": "000000",
                "retMsg": "交易成功",
                "data": {"accountNo": "..."},
            }
        ]
    }
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from protocols.platform.codec import JsonCodec
from protocols.platform.messages import Status

__all__ = ["BANK_DIALECT", "BANK_QUEUEABLE", "BankOperation"]


class BankOperation(StrEnum):
    """What the branch asks of the bank core."""

    OPEN_ACCOUNT = "open_account"  # 开户 / 绑定: returns accountNo
    ACTIVATE_FINANCIAL = "activate_financial"  # 金融功能激活
    FREEZE = "freeze"  # 挂失冻结
    UNFREEZE = "unfreeze"  # 解挂解冻
    DEBIT_FEE = "debit_fee"  # 工本费扣款: returns receiptNo
    CLOSE_ACCOUNT = "close_account"  # 注销销户
    REOPEN_ACCOUNT = "reopen_account"  # 注销回退: the account as it was before the closure
    UPDATE_CONTACT = "update_contact"  # 信息变更: the holder's phone and address at the bank
    REVERSE_FEE = "reverse_fee"  # 冲正: a fee debit given back (receiptNo, amount)
    DAY_SUMMARY = "day_summary"  # 日终对账: the day's transactions from this branch (day)


#: Bank operations that report a change already made and may wait in the outbox.
BANK_QUEUEABLE: Final = frozenset(
    {
        BankOperation.ACTIVATE_FINANCIAL,
        BankOperation.FREEZE,
        BankOperation.UNFREEZE,
        BankOperation.CLOSE_ACCOUNT,
        BankOperation.REOPEN_ACCOUNT,
        BankOperation.UPDATE_CONTACT,
        BankOperation.REVERSE_FEE,
    }
)

#: The bank's JSON dialect.
BANK_DIALECT: Final = JsonCodec(
    name="bank-json",
    services={
        BankOperation.OPEN_ACCOUNT: "SSC001",
        BankOperation.ACTIVATE_FINANCIAL: "SSC002",
        BankOperation.FREEZE: "SSC003",
        BankOperation.UNFREEZE: "SSC004",
        BankOperation.DEBIT_FEE: "SSC005",
        BankOperation.CLOSE_ACCOUNT: "SSC006",
        BankOperation.REOPEN_ACCOUNT: "SSC007",
        BankOperation.UPDATE_CONTACT: "SSC008",
        BankOperation.REVERSE_FEE: "SSC009",
        BankOperation.DAY_SUMMARY: "SSC010",
    },
    codes={
        Status.OK: "000000",
        Status.ALREADY_APPLIED: "000001",
        Status.NOT_FOUND: "E20001",
        Status.INVALID_STATE: "E20002",
        Status.INVALID_REQUEST: "E40000",
        Status.REFUSED: "E30001",
        Status.ERROR: "E99999",
    },
    operation_key="txCode",
    id_key="serialNo",
    code_key="retCode",
    text_key="retMsg",
)
