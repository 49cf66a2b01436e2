"""The owner's review of held orders: the queue on the dashboard, one order's page with its
timeline, and the approve and cancel actions, each with a required note."""

import re
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug import Response
from wtforms import BooleanField, TextAreaField
from wtforms.validators import InputRequired, Length

from shop import audit
from shop.accounts.overview import histories
from shop.blueprints.admin import bp
from shop.blueprints.admin.orders import fired_reasons
from shop.extensions import db
from shop.models import Order
from shop.orders import review, timeline
from shop.orders.review import ReviewOutcome, ReviewResult
from shop.web.client import current_client
from shop.web.forms import StrictForm, error_messages

# Held orders on the dashboard: each card carries the account's history, the order's timeline
# and both forms (about 0.4 ms to read and render); the oldest five are the owner's next work
# and leave the figures below in sight, the rest a link away ("Next held orders", and the
# orders list filtered to held).
QUEUE_PAGE = 5
ORDER_REF = re.compile(r"SH-[0-9A-Z]{8}")
NOTE = [
    InputRequired("Write a note saying why: it is kept with the decision."),
    Length(max=audit.NOTE_MAX_LENGTH, message=f"At most {audit.NOTE_MAX_LENGTH} characters."),
]
STATUS = {
    ReviewOutcome.NOTE_REQUIRED: 422,
    ReviewOutcome.ALREADY_HANDLED: 409,
    ReviewOutcome.CODE_NOT_SENT: 409,
}


class CancelForm(StrictForm):
    note = TextAreaField("Note", NOTE)


class ApproveForm(CancelForm):
    ask_code = BooleanField("Ask the shopper for a code first")


def review_queue() -> dict[str, Any]:
    """The held orders for the dashboard, oldest first, a page at a time (`?after=<ref>`)."""
    after = request.args.get("after", "").strip() or None
    if after is not None and not ORDER_REF.fullmatch(after):
        abort(400, description="“after” must be an order reference such as SH-2B4C6D8F.")
    held, more = review.held_orders(after, QUEUE_PAGE)
    return {
        "queue": held,
        "queue_more": more,
        "queue_after": after,
        "histories": histories(order.user for order in held),
        "timelines": timeline.timelines_for_owner(order.id for order in held),
        "fired_reasons": fired_reasons,
    }


def _order_or_404(order_ref: str) -> Order:
    order = db.session.scalar(select(Order).where(Order.ref == order_ref))
    if order is None:
        abort(404, description="There is no such order.")
    return order


def render_order(order: Order, status: int = 200, errors: list[str] | None = None):
    return render_template(
        "admin/order.html",
        order=order,
        reasons=fired_reasons(order),
        history=histories([order.user])[order.user_id],
        timeline=timeline.for_owner(order),
        errors=errors or [],
    ), status


@bp.get("/orders/<order_ref>")
def order_page(order_ref: str):
    return render_order(_order_or_404(order_ref))


def _answer(order_ref: str, result: ReviewResult) -> Response | tuple[str, int]:
    if result.outcome == ReviewOutcome.NOT_FOUND:
        abort(404, description=result.message)
    if result.done:
        flash(result.message, "success")
        return redirect(url_for("admin.dashboard", _anchor="review"))
    db.session.expire_all()
    return render_order(_order_or_404(order_ref), STATUS[result.outcome], [result.message])


@bp.post("/orders/<order_ref>/approve")
def approve(order_ref: str) -> Response | tuple[str, int]:
    form = ApproveForm()
    if not form.validate_on_submit():
        return render_order(_order_or_404(order_ref), 422, error_messages(form))
    result = review.approve(
        order_ref,
        current_user._get_current_object(),
        form.note.data,
        current_client(),
        ask_code=form.ask_code.data,
    )
    return _answer(order_ref, result)


@bp.post("/orders/<order_ref>/cancel")
def cancel(order_ref: str) -> Response | tuple[str, int]:
    form = CancelForm()
    if not form.validate_on_submit():
        return render_order(_order_or_404(order_ref), 422, error_messages(form))
    result = review.cancel(
        order_ref, current_user._get_current_object(), form.note.data, current_client()
    )
    return _answer(order_ref, result)
