"""Step-up factors beyond SMS: passkeys (WebAuthn), an authenticator app (TOTP) and recovery
codes, and the step-up they answer.

`steps`: a step-up and any factor's answer to it (counts, single use, lockout shared with
SMS codes); `passkeys`, `totp`, `recovery`: each factor's own checks; `enrolment`: adding and
removing factors, after a fresh step-up, with alerts.
"""

from shop.models import Factor
from shop.stepup.steps import Answer

__all__ = ["Answer", "Factor"]
