"""The shop owner's pages. Every view of this blueprint is owner-only, by the guard below."""

import json
from datetime import timedelta
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug import Response

from shop import audit, clock, risk
from shop.blueprints.admin.rules_form import RULE_LABELS, RiskRulesForm, rule_text
from shop.extensions import db, login_manager
from shop.models import AuditEvent, User
from shop.orders import review
from shop.risk.figures import (
    CHART_OUTCOMES,
    UNDECIDED,
    Rate,
    orders_per_day,
    step_up_figures,
)
from shop.risk.friction import FRICTION_KINDS
from shop.sms.figures import sms_figures
from shop.sms.watch import recent_alarms
from shop.stepup.figures import factor_figures
from shop.web.client import client_ip
from shop.web.forms import error_messages
from shop.web.keyset import newest_first

bp = Blueprint("admin", __name__, url_prefix="/admin")

# Rows on a page of every owner's list (orders, SMS log, refused sends, audit trail, an
# account's events): a screenful to scan, the next one a keyset link away. Each row costs
# about 0.1 ms to read and render, what a busy shop's full page adds to the demo's few rows.
PER_PAGE = 25
FIGURE_WINDOWS = (("Last 24 hours", timedelta(hours=24)), ("Last 7 days", timedelta(days=7)))
CHART_DAYS = 14
FACTOR_WINDOW = timedelta(days=7)
RULE_HISTORY_ROWS = 50


@bp.before_request
def owners_only() -> Response | None:
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_owner:
        abort(403, description="Only the shop owner can see this page.")
    return None


@bp.context_processor
def owner_navigation() -> dict[str, Any]:
    """On every owner page: the held orders waiting (in the navigation) and SMS alarms."""
    return {"held_total": review.held_count(), "alarms": recent_alarms()}


def choice_arg(name: str, choices: list[str]) -> str:
    """The query argument `name`: empty, or one of `choices` (anything else is a 400)."""
    value = request.args.get(name, "").strip()
    if value and value not in choices:
        abort(
            400,
            description=f"Unknown {name} “{value[:20]}”. Choose one of: {', '.join(choices)}.",
        )
    return value


def emails_of(user_ids: set[int | None]) -> dict[int, str]:
    wanted = {user_id for user_id in user_ids if user_id is not None}
    if not wanted:
        return {}
    return dict(db.session.execute(select(User.id, User.email).where(User.id.in_(wanted))).all())


def shop_currency() -> str:
    return current_app.config["SHOP_CURRENCY"]


# Dashboard ---------------------------------------------------------------------------------


@bp.get("")
def dashboard() -> str:
    now = clock.now()
    windows = []
    for label, window in FIGURE_WINDOWS:
        steps, messages = step_up_figures(now - window), sms_figures(now - window)
        rates = [
            ("Challenge rate", "challenge_rate", steps.challenge_rate),
            ("Code conversion", "code_conversion", steps.code_conversion),
            ("Abandonment", "abandonment", steps.abandonment),
            ("SMS delivery", "sms_delivery", Rate(messages.delivered, messages.sent)),
        ]
        windows.append({"label": label, "steps": steps, "sms": messages, "rates": rates})
    days = orders_per_day(now, CHART_DAYS)
    # "No decision" only when some order predates risk decisions.
    outcomes = [
        outcome
        for outcome in CHART_OUTCOMES
        if outcome != UNDECIDED or any(day.orders[UNDECIDED] for day in days)
    ]
    factors = factor_figures(now - FACTOR_WINDOW)
    return render_template(
        "admin/dashboard.html",
        windows=windows,
        days=days,
        outcomes=outcomes,
        factors=factors,
        currency=shop_currency(),
        **review_queue(),
    )


# Risk rules and the backtest -----------------------------------------------------------------


def rule_history() -> list[dict[str, Any]]:
    """The latest rule changes: when, who, from where, and old → new for each rule."""
    rows = db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.event == audit.Event.RULES_CHANGED)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(RULE_HISTORY_ROWS)
    ).all()
    emails = emails_of({row.actor_id for row in rows})
    history = []
    for row in rows:
        try:
            changes = json.loads(row.detail or "{}").get("changes", {})
        except (ValueError, AttributeError):
            changes = {}
        history.append(
            {
                "at": row.at,
                "who": emails.get(row.actor_id, "(deleted account)"),
                "ip": row.ip,
                "changes": [
                    (key, change.get("old"), change.get("new"))
                    for key, change in changes.items()
                    if isinstance(change, dict)
                ],
            }
        )
    return history


def render_editor(form: RiskRulesForm, status: int = 200) -> tuple[str, int]:
    return render_template(
        "admin/risk.html",
        form=form,
        errors=error_messages(form),
        history=rule_history(),
        rule_labels=RULE_LABELS,
        rule_text=rule_text,
        currency=shop_currency(),
    ), status


@bp.route("/risk", methods=["GET", "POST"])
def risk_rules() -> Response | tuple[str, int]:
    currency = shop_currency()
    form = RiskRulesForm.for_rules(risk.current_rules(), currency)
    if not form.is_submitted():
        return render_editor(form)
    if not form.validate_on_submit():
        return render_editor(form, 422)
    changes = risk.save_rules(
        form.rules(), actor=current_user._get_current_object(), ip=client_ip()
    )
    db.session.commit()
    if changes:
        listed = "; ".join(
            f"{RULE_LABELS[key]}: {rule_text(key, old, currency)} → {rule_text(key, new, currency)}"
            for key, (old, new) in changes.items()
        )
        flash(f"Rules saved. Changed: {listed}.", "success")
    else:
        flash("Nothing to save: the rules are unchanged.", "info")
    return redirect(url_for("admin.risk_rules"))


@bp.post("/risk/backtest")
def backtest() -> tuple[str, int]:
    """What the proposed rules would have decided on past orders; nothing is saved."""
    currency = shop_currency()
    current = risk.current_rules()
    form = RiskRulesForm.for_rules(current, currency)
    if not form.validate_on_submit():
        return render_editor(form, 422)
    proposed = form.rules()
    report = risk.backtest(proposed, current, now=clock.now())
    return render_template(
        "admin/backtest.html",
        form=form,
        report=report,
        friction=report.friction,
        friction_kinds=FRICTION_KINDS,
        changes=proposed.changes_from(current),
        rule_names=risk.RULE_NAMES,
        rule_labels=RULE_LABELS,
        rule_text=rule_text,
        currency=currency,
    ), 200


# Audit trail -------------------------------------------------------------------------------


def pretty_detail(detail: str) -> str:
    """The detail JSON, indented for reading (the template escapes it)."""
    if not detail:
        return ""
    try:
        return json.dumps(json.loads(detail), indent=2, sort_keys=True, ensure_ascii=False)
    except ValueError:
        return detail


@bp.get("/audit")
def audit_trail() -> str:
    events = [event.value for event in audit.Event]
    event = choice_arg("event", events)
    query = select(AuditEvent)
    if event:
        query = query.where(AuditEvent.event == event)
    page = newest_first(query, AuditEvent, AuditEvent.at, PER_PAGE)
    emails = emails_of({row.user_id for row in page.items} | {row.actor_id for row in page.items})
    return render_template(
        "admin/audit.html",
        page=page,
        event=event,
        events=events,
        emails=emails,
        pretty_detail=pretty_detail,
    )


# Orders, the review queue, accounts, the SMS console and the settings have modules of their own.
from shop.blueprints.admin import accounts, orders, reviews, shop_settings, sms  # noqa: E402
from shop.blueprints.admin.reviews import review_queue  # noqa: E402

__all__ = ["accounts", "bp", "orders", "reviews", "shop_settings", "sms"]
