"""The owner's list of orders, each with its risk decision and every reason that fired."""

from flask import render_template
from sqlalchemy import select
from sqlalchemy.orm import joinedload, load_only

from shop.blueprints.admin import PER_PAGE, bp, choice_arg
from shop.models import Order, OrderStatus, User
from shop.risk import Outcome
from shop.web.keyset import newest_first

# What a row of the orders list shows, read with the page and nothing more: the shopper's
# email joined in rather than read by a query per row, and any other column a template
# reached for would raise instead of quietly costing a query per row.
ORDER_ROW = (
    load_only(
        Order.ref,
        Order.user_id,
        Order.status,
        Order.currency,
        Order.total_minor,
        Order.created_at,
        Order.risk_outcome,
        Order.risk_reasons,
        raiseload=True,
    ),
    joinedload(Order.user, innerjoin=True).load_only(User.email, raiseload=True),
)


def fired_reasons(order: Order) -> list[dict]:
    """Every reason that fired, once: a re-evaluation at confirmation may repeat some."""
    seen, reasons = set(), []
    for reason in order.reasons:
        key = (reason.get("code"), reason.get("outcome"), reason.get("text"))
        if key not in seen:
            seen.add(key)
            reasons.append(reason)
    return reasons


@bp.get("/orders")
def orders() -> str:
    statuses = [status.value for status in OrderStatus]
    outcomes = [outcome.value for outcome in Outcome]
    status = choice_arg("status", statuses)
    outcome = choice_arg("outcome", outcomes)
    query = select(Order).options(*ORDER_ROW)
    if status:
        query = query.where(Order.status == status)
    if outcome:
        query = query.where(Order.risk_outcome == outcome)
    return render_template(
        "admin/orders.html",
        page=newest_first(query, Order, Order.created_at, PER_PAGE),
        status=status,
        outcome=outcome,
        statuses=statuses,
        outcomes=outcomes,
        fired_reasons=fired_reasons,
    )
