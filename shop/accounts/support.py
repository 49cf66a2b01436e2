"""What an owner can do to an account, as use cases: lift the wrong-code lock on SMS step-up
(the account holder is alerted), and end every session of the account. Each needs a note
and is audited with who, when and the note.
"""

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import update

from shop import alerts, audit, clock
from shop.accounts import tokens
from shop.accounts.client import Client
from shop.accounts.overview import step_up_state
from shop.extensions import db
from shop.models import User


class SupportOutcome(StrEnum):
    UNLOCKED = "unlocked"
    SESSIONS_ENDED = "sessions_ended"
    NOT_LOCKED = "not_locked"  # nothing to unlock (or another owner just did)
    NOTE_REQUIRED = "note_required"
    NOT_FOUND = "not_found"


MESSAGES = {
    SupportOutcome.UNLOCKED: "SMS verification is unlocked; the account holder was told by SMS.",
    SupportOutcome.SESSIONS_ENDED: "Every session and API token of this account has ended.",
    SupportOutcome.NOT_LOCKED: "SMS verification is not locked on this account: nothing changed.",
    SupportOutcome.NOTE_REQUIRED: "Write a note saying why: it is kept with the action.",
    SupportOutcome.NOT_FOUND: "There is no such account.",
}


@dataclass(frozen=True)
class SupportResult:
    outcome: SupportOutcome

    @property
    def message(self) -> str:
        return MESSAGES[self.outcome]


def _account_and_note(account_id: int, note: str) -> tuple[User, str] | SupportResult:
    """Every support action needs an account that exists and a note saying why."""
    note = audit.clean_note(note)
    user = db.session.get(User, account_id)
    if user is None:
        return SupportResult(SupportOutcome.NOT_FOUND)
    if not note:
        return SupportResult(SupportOutcome.NOTE_REQUIRED)
    return user, note


def unlock_step_up(account_id: int, owner: User, note: str, client: Client) -> SupportResult:
    """Wrong codes before now stop counting towards the lock (and the reset's); the holder
    gets an alert."""
    found = _account_and_note(account_id, note)
    if isinstance(found, SupportResult):
        return found
    user, note = found
    state = step_up_state(user)
    if not (state.locked or state.reset_locked):
        return SupportResult(SupportOutcome.NOT_LOCKED)
    unlocked_before = user.step_up_unlocked_at
    # Conditional on the unlock time read above: two owners unlocking at once alert once.
    done = db.session.execute(
        update(User)
        .where(
            User.id == user.id,
            User.step_up_unlocked_at.is_(None)
            if unlocked_before is None
            else User.step_up_unlocked_at == unlocked_before,
        )
        .values(step_up_unlocked_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        db.session.rollback()
        return SupportResult(SupportOutcome.NOT_LOCKED)
    db.session.refresh(user)
    alerts.step_up_unlocked(user)
    audit.record(
        audit.Event.STEP_UP_UNLOCKED, user_id=user.id, actor_id=owner.id, ip=client.ip, note=note
    )
    db.session.commit()
    return SupportResult(SupportOutcome.UNLOCKED)


def end_sessions(account_id: int, owner: User, note: str, client: Client) -> SupportResult:
    """Sign the account out everywhere: sessions, remembered devices and API tokens."""
    found = _account_and_note(account_id, note)
    if isinstance(found, SupportResult):
        return found
    user, note = found
    user.end_all_sessions()
    tokens.revoke_all(user)
    audit.record(
        audit.Event.SIGNED_OUT_EVERYWHERE,
        user_id=user.id,
        actor_id=owner.id,
        ip=client.ip,
        note=note,
    )
    db.session.commit()
    return SupportResult(SupportOutcome.SESSIONS_ENDED)
