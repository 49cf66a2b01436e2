"""One account as the owner sees it, and what the owner can do to it (each with a note)."""

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from werkzeug import Response
from wtforms import TextAreaField

from shop.accounts import overview, support
from shop.accounts.support import SupportOutcome, SupportResult
from shop.blueprints.admin import PER_PAGE, bp
from shop.blueprints.admin.reviews import NOTE
from shop.extensions import db
from shop.models import User
from shop.web.client import current_client
from shop.web.forms import StrictForm, error_messages
from shop.web.keyset import cursor_arg

EVENTS_PAGE = PER_PAGE
STATUS = {SupportOutcome.NOTE_REQUIRED: 422, SupportOutcome.NOT_LOCKED: 409}


class NoteForm(StrictForm):
    note = TextAreaField("Note", NOTE)


def _account_or_404(account_id: int) -> User:
    user = db.session.get(User, account_id)
    if user is None:
        abort(404, description="There is no such account.")
    return user


def render_account(user: User, status: int = 200, errors: list[str] | None = None):
    before = cursor_arg("before", "an event number")
    events, more = overview.events_before(user, before, EVENTS_PAGE)
    return render_template(
        "admin/account.html",
        account=overview.overview(user),
        events=events,
        more_events=more,
        errors=errors or [],
    ), status


@bp.get("/accounts/<int:account_id>")
def account(account_id: int):
    return render_account(_account_or_404(account_id))


def _act(account_id: int, action) -> Response | tuple[str, int]:
    user = _account_or_404(account_id)
    form = NoteForm()
    if not form.validate_on_submit():
        return render_account(user, 422, error_messages(form))
    result: SupportResult = action(
        account_id, current_user._get_current_object(), form.note.data, current_client()
    )
    if result.outcome in STATUS:
        db.session.expire_all()
        return render_account(user, STATUS[result.outcome], [result.message])
    flash(result.message, "success")
    return redirect(url_for("admin.account", account_id=account_id))


@bp.post("/accounts/<int:account_id>/unlock")
def unlock(account_id: int) -> Response | tuple[str, int]:
    return _act(account_id, support.unlock_step_up)


@bp.post("/accounts/<int:account_id>/end-sessions")
def end_sessions(account_id: int) -> Response | tuple[str, int]:
    return _act(account_id, support.end_sessions)
