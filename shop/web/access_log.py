"""Access logs never carry a webhook signature: `sig=` in a logged URL is masked.

Vonage may put a webhook's signature in the query string; the development server's and
gunicorn's access logs would then keep it (and a log is read by more people than the
secret should be). The filter sits on their loggers, so it holds whatever handlers the
operator configures.
"""

import logging
import re

ACCESS_LOGGERS = ("werkzeug", "gunicorn.access")
SIGNATURE = re.compile(r"(?i)([?&](?:sig|signature)=)[^&\s\"']*")
MASK = "[redacted]"


def mask_signatures(text: str) -> str:
    return SIGNATURE.sub(rf"\g<1>{MASK}", text)


class MaskSignatures(logging.Filter):
    """Rewrites a record whose text holds a signature, and lets every record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_signatures(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def mask_access_logs() -> None:
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(each, MaskSignatures) for each in logger.filters):
            logger.addFilter(MaskSignatures())
