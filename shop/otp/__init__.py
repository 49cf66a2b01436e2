"""One-time passwords for step-up verification (SPEC section 5).

`codes`: issue, verify and consume a code; `limits`: who may be sent one, and when;
`policy`: the numbers; `texts`: the words of each code message.
"""

from shop.otp.codes import (
    REDACTED,
    ChallengeStatus,
    Check,
    CodeSend,
    Otp,
    Sent,
    Verification,
    binding_for,
    service,
)
from shop.otp.limits import Refusal, SendRefused
from shop.otp.policy import OtpPolicy

__all__ = [
    "REDACTED",
    "ChallengeStatus",
    "Check",
    "CodeSend",
    "Otp",
    "OtpPolicy",
    "Refusal",
    "SendRefused",
    "Sent",
    "Verification",
    "binding_for",
    "service",
]
