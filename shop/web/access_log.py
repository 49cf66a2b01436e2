"""Access logs never carry a secret of a URL: a webhook's signature (`sig=`) and the token
of a "not me" link (`/account/not-me/<token>`) are masked.

Vonage may put a webhook's signature in the query string, and a shopper's "not me" link
carries its token in the path (it is followed from an SMS); the development server's and
gunicorn's access logs would then keep them, and a log is read by more people than should
sign a shopper out everywhere and cancel their orders. The filter sits on their loggers,
so it holds whatever handlers the operator configures.
"""

import logging
import re

from shop.alerts import NOT_ME_TOKEN

ACCESS_LOGGERS = ("werkzeug", "gunicorn.access")
SIGNATURE = re.compile(r"(?i)([?&](?:sig|signature)=)[^&\s\"']*")
MASK = "[redacted]"


def mask_secrets(text: str) -> str:
    return NOT_ME_TOKEN.sub(MASK, SIGNATURE.sub(rf"\g<1>{MASK}", text))


class MaskSecrets(logging.Filter):
    """Rewrites a record whose text holds a signature or a token, and lets every record
    through."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def mask_access_logs() -> None:
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(each, MaskSecrets) for each in logger.filters):
            logger.addFilter(MaskSecrets())
