"""The shop owner's pages. Every view of this blueprint is owner-only, by the guard below."""

import re
from datetime import timedelta

from flask import Blueprint, abort, render_template, request
from flask_login import current_user
from sqlalchemy import select
from werkzeug import Response

from shop import clock
from shop.extensions import db, login_manager
from shop.models import SmsMessage, SmsStatus
from shop.sms.figures import sms_figures

bp = Blueprint("admin", __name__, url_prefix="/admin")

SMS_PER_PAGE = 50
FIGURE_WINDOWS = (("Last 24 hours", timedelta(hours=24)), ("Last 7 days", timedelta(days=7)))
PAGE_NUMBER = re.compile(r"[1-9][0-9]{0,5}")


@bp.before_request
def owners_only() -> Response | None:
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_owner:
        abort(403, description="Only the shop owner can see this page.")
    return None


def page_number() -> int:
    raw = request.args.get("page", "1").strip()
    if not PAGE_NUMBER.fullmatch(raw):
        abort(400, description="The page number must be a whole number from 1.")
    return int(raw)


def shown_body(message: SmsMessage) -> str:
    """What the owner may read of a message: never a code, even one not yet redacted."""
    if message.is_code:
        return message.redacted_body or "(code hidden)"
    return message.redacted_body or message.body


@bp.get("/sms")
def sms() -> str:
    statuses = [status.value for status in SmsStatus]
    status = request.args.get("status", "").strip()
    if status and status not in statuses:
        abort(
            400,
            description=f"Unknown status “{status[:20]}”. Choose one of: {', '.join(statuses)}.",
        )
    query = select(SmsMessage).order_by(SmsMessage.created_at.desc(), SmsMessage.id.desc())
    if status:
        query = query.where(SmsMessage.status == status)
    page = db.paginate(query, page=page_number(), per_page=SMS_PER_PAGE, max_per_page=SMS_PER_PAGE)
    now = clock.now()
    figures = [(label, sms_figures(now - window)) for label, window in FIGURE_WINDOWS]
    return render_template(
        "admin/sms.html",
        page=page,
        status=status,
        statuses=statuses,
        figures=figures,
        shown_body=shown_body,
    )
