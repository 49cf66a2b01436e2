"""Vonage webhooks: delivery receipts and inbound SMS, authenticated by signature, not CSRF.

Vonage may send the parameters as a query string, a form or a JSON object; they are merged
into one flat mapping of strings, the shape the signature is computed over. Answers are
short plain text: 401 for a missing, bad or stale signature, 400 for a request that makes
no sense, and an empty 200 otherwise (an unknown message too, so that Vonage stops retrying).
"""

import json
import logging
from collections.abc import Callable, Mapping

from flask import Blueprint, current_app, request
from werkzeug import Response

from shop.extensions import csrf, db
from shop.sms import receipts
from shop.sms.receipts import BadSignature, MalformedWebhook
from shop.web.input_guard import RepeatedKey, one_value_per_key

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks/vonage")
csrf.exempt(bp)


def _refuse_constant(name: str) -> None:
    raise MalformedWebhook(f"{name} is not a value.")


def _json_params(body: bytes) -> dict[str, str]:
    """A flat JSON object as strings: numbers keep their text, so the signature still holds."""
    try:
        data = json.loads(
            body,
            parse_int=str,
            parse_float=str,
            parse_constant=_refuse_constant,
            object_pairs_hook=one_value_per_key,
        )
    except MalformedWebhook:
        raise
    except RepeatedKey as error:
        raise MalformedWebhook(str(error)) from None
    except (ValueError, RecursionError):
        raise MalformedWebhook("The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise MalformedWebhook("The JSON body must be an object.")
    params = {}
    for name, value in data.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, str):
            raise MalformedWebhook("The JSON body must be flat.")
        params[name] = value
    return params


def webhook_params() -> dict[str, str]:
    """Query string, form and JSON body as one mapping; a name given twice is refused."""
    params: dict[str, str] = {}
    sources: list[Mapping[str, list[str]]] = [
        dict(request.args.lists()),
        dict(request.form.lists()),
    ]
    if request.is_json:
        sources.append({name: [value] for name, value in _json_params(request.get_data()).items()})
    for source in sources:
        for name, values in source.items():
            if name in params or len(values) != 1:
                raise MalformedWebhook(f"The parameter “{name[:40]}” was sent more than once.")
            params[name] = values[0]
    for name, value in params.items():
        try:
            (name + value).encode()
        except UnicodeEncodeError:  # lone surrogates from JSON escapes
            raise MalformedWebhook("The request is not valid UTF-8.") from None
    return params


def _plain(message: str, status: int) -> Response:
    return Response(f"{message}\n", status=status, mimetype="text/plain")


def _handle(apply: Callable[[Mapping[str, str]], object]) -> Response:
    config = current_app.config
    try:
        params = webhook_params()
        receipts.check_signature(
            params,
            secret=config.get("VONAGE_SIGNATURE_SECRET", ""),
            api_key=config.get("VONAGE_API_KEY", ""),
        )
        apply(params)
    except BadSignature as error:
        log.warning("Refused a Vonage webhook at %s: %s", request.path, error)
        return _plain(str(error), 401)
    except MalformedWebhook as error:
        db.session.rollback()
        return _plain(str(error), 400)
    db.session.commit()
    return Response(status=200)


@bp.post("/delivery-receipt")
def delivery_receipt() -> Response:
    return _handle(receipts.apply_receipt)


@bp.post("/inbound")
def inbound() -> Response:
    return _handle(receipts.apply_inbound)
