"""HTTP rate limits on guessing (Flask-Limiter), per client address, in Redis when configured.

These slow one address down; the per-code and per-account counts of `shop.otp` hold
whatever the address.
"""

import time

from flask import current_app

from shop.extensions import limiter


def sign_in_limit() -> str:
    return current_app.config["SIGN_IN_RATE_LIMIT"]


def code_entry_limit() -> str:
    return current_app.config["CODE_ENTRY_RATE_LIMIT"]


# One budget for signing in and registering: a registration attempt is no cheaper a probe
# of which e-mails have accounts than a sign-in attempt.
limit_sign_in = limiter.shared_limit(sign_in_limit, scope="sign-in", methods=["POST"])
limit_code_entry = limiter.limit(code_entry_limit, methods=["POST"])


def retry_after_seconds() -> int:
    """After a breached limit: seconds until its window lets a request through again.

    Flask-Limiter writes its per-response countdown to X-RateLimit-Retry-After (see
    `Config`), so that `Retry-After` only ever appears on a refusal and always means it.
    """
    limit = limiter.current_limit
    if limit is None:
        return 60
    return max(1, int(limit.reset_at - time.time()))
