"""One-time passwords for step-up verification (SPEC section 5).

`codes`: issue, verify and consume a code; `challenges`: the code rows (the live one, a
code's status); `lockout`: the account's 24-hour count of wrong answers, of every factor;
`outcomes`: what the service answers; `limits`: who may be sent one, and when; `policy`: the
numbers; `texts`: the words of each code message.
"""

from shop.otp.challenges import end_live_not_sent_to, end_live_sent_to, live_challenge
from shop.otp.codes import Otp, binding_for, service
from shop.otp.limits import Refusal, SendRefused
from shop.otp.outcomes import ChallengeStatus, Check, CodeSend, Sent, Verification
from shop.otp.policy import OtpPolicy

__all__ = [
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
    "end_live_not_sent_to",
    "end_live_sent_to",
    "live_challenge",
    "service",
]
