"""Step-up factors beyond SMS: passkeys (WebAuthn), an authenticator app (TOTP) and recovery
codes, and the step-up they answer.

`steps`: a step-up, the factors it may take and a passkey's challenge to it; `answers`: any
factor's answer to it (counts, single use, lockout shared with SMS codes); `passkeys`, `totp`,
`recovery`: each factor's own checks; `enrolment`: adding and removing factors, after a fresh
step-up, with alerts; `security_check`: proving it is you before such a change; `figures`:
the owner's figures per factor.
"""

from shop.models import Factor
from shop.stepup.answers import Answer

__all__ = ["Answer", "Factor"]
