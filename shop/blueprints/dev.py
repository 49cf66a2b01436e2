"""The demo phone: every SMS the console backend "sent", newest first (SPEC section 2).

The page shows live codes, so it exists only with the console backend and only in debug
mode (`make run`) or when `DEV_PHONE=1` asks for it: a shop started with the defaults
under gunicorn has no such page (and refuses the console backend unless told,
`shop.check_sms_backend`).
"""

import re

from flask import Blueprint, Flask, abort, render_template, request
from markupsafe import Markup, escape
from sqlalchemy import select

from shop.extensions import db
from shop.models import ConsoleMessage
from shop.sms.sealing import readable

bp = Blueprint("dev", __name__, url_prefix="/dev")

SHOWN_MESSAGES = 200
# http(s) links up to a space, quote or angle bracket; trailing punctuation ends a sentence.
LINK = re.compile(r"""https?://[^\s<>"']+?(?=[.,;:!?)]*(?:[\s<>"']|$))""")
PHONE_FILTER = re.compile(r"\+?([0-9]{6,15})")


def register(app: Flask) -> None:
    if app.config["SMS_BACKEND"] == "console" and (app.debug or app.config["DEV_PHONE"]):
        app.register_blueprint(bp)


def linkify(text: str) -> Markup:
    """`text` escaped, with its http(s) URLs as links."""
    parts = []
    position = 0
    for match in LINK.finditer(text):
        url = match.group(0)
        parts.append(escape(text[position : match.start()]))
        parts.append(Markup('<a href="{0}" rel="noreferrer">{0}</a>').format(url))
        position = match.end()
    parts.append(escape(text[position:]))
    return Markup("").join(parts)


def phone_filter() -> str | None:
    """The `to` filter in E.164; a bare "+" in a query string arrives as a space."""
    raw = request.args.get("to", "").strip()
    if not raw:
        return None
    match = PHONE_FILTER.fullmatch(raw)
    if match is None:
        abort(400, description="Filter by a phone number such as +447700900123.")
    return f"+{match.group(1)}"


@bp.get("/phone")
def phone() -> str:
    to_number = phone_filter()
    query = select(ConsoleMessage).order_by(
        ConsoleMessage.received_at.desc(), ConsoleMessage.id.desc()
    )
    if to_number:
        query = query.where(ConsoleMessage.to_number == to_number)
    messages = db.session.scalars(query.limit(SHOWN_MESSAGES)).all()
    numbers = db.session.scalars(
        select(ConsoleMessage.to_number).distinct().order_by(ConsoleMessage.to_number)
    ).all()
    return render_template(
        "dev/phone.html",
        messages=messages,
        numbers=numbers,
        to_number=to_number,
        linkify=linkify,
        shown=lambda message: readable(message.body, message.to_number),
        shown_count=SHOWN_MESSAGES,
    )
