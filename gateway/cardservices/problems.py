"""Problems the window card services answer with (registered in :mod:`gateway.runtime.problems`)."""

from __future__ import annotations

from typing import Final

from gateway.runtime.problems import register

__all__ = [
    "CARD_APPLICATION_BLOCKED",
    "CARD_HOLDER_MISMATCH",
    "CARD_REFUSED",
    "CARD_UNREADABLE",
    "ISSUER_REFUSED",
    "ISSUER_UNREACHABLE",
    "PIN_DEFAULT_REFUSED",
    "PIN_LOCKED",
    "PIN_NOT_LOCKED",
    "PIN_PAD_FAILED",
    "PIN_WRONG",
    "WINDOW_NOT_EQUIPPED",
]

WINDOW_NOT_EQUIPPED: Final = register(
    "window-not-equipped",
    409,
    "This terminal has no card reader and PIN pad assigned",
    "本终端未配置读卡器和密码键盘",
)
CARD_UNREADABLE: Final = register(
    "card-unreadable", 409, "No readable card in the window's reader", "读卡器中无卡或无法读卡"
)
CARD_APPLICATION_BLOCKED: Final = register(
    "card-application-blocked",
    409,
    "The card's social-security application is blocked",
    "社保卡应用已锁定（应用锁）",
)
CARD_HOLDER_MISMATCH: Final = register(
    "card-holder-mismatch",
    409,
    "The card in the reader belongs to someone else",
    "读卡器中的社保卡不属于本次申办人",
)
PIN_WRONG: Final = register("pin-wrong", 422, "Wrong PIN", "密码错误")
PIN_LOCKED: Final = register("pin-locked", 409, "The PIN is locked", "密码已锁定")
PIN_NOT_LOCKED: Final = register(
    "pin-not-locked", 409, "The PIN is not locked; nothing to unlock", "密码未锁定，无需解锁"
)
PIN_DEFAULT_REFUSED: Final = register(
    "pin-default-refused",
    422,
    "The initial PIN cannot be the new PIN",
    "新密码不能为初始密码",
)
PIN_PAD_FAILED: Final = register(
    "pin-pad-failed", 409, "The PIN was not entered on the pad", "密码键盘未完成输入"
)
CARD_REFUSED: Final = register(
    "card-refused", 409, "The card refused the command", "社保卡拒绝执行该指令"
)
ISSUER_REFUSED: Final = register(
    "issuer-refused",
    409,
    "The issuing province's platform refused",
    "发卡地平台拒绝办理",
)
ISSUER_UNREACHABLE: Final = register(
    "issuer-unreachable",
    502,
    "The issuing province's platform did not answer in a usable way",
    "发卡地平台未正常应答",
)
