"""What the owner sees of an account: its history in a few figures (beside every held order
in the review queue) and the whole account page (events, devices, orders, factors, alerts).

Figures for several accounts are grouped queries over indexed columns of those accounts
only (orders by user, devices by user, wrong codes by user and time, audit by user).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, distinct, func, literal, select, union_all

from shop import audit, clock, otp
from shop.accounts import tokens
from shop.extensions import db
from shop.models import (
    ApiToken,
    AuditEvent,
    KnownDevice,
    Order,
    OrderStatus,
    OtpFailure,
    User,
)

RECENT_ORDERS = 20


@dataclass(frozen=True)
class ShopperHistory:
    user_id: int
    email: str
    joined_at: datetime
    orders: int
    placed: int
    devices: int  # browsers that signed in
    order_devices: int  # device ids seen on its orders
    phone_changes: int
    phone_changed_at: datetime | None
    failed_codes_24h: int
    failed_codes: int


def histories(users: Iterable[User]) -> dict[int, ShopperHistory]:
    """Each account's history, in one statement whatever the number of accounts: four
    grouped counts, one per table, each through its index on the account."""
    accounts = {user.id: user for user in users}
    if not accounts:
        return {}
    ids = list(accounts)
    day_ago = clock.now() - timedelta(hours=24)
    none = literal(0)
    parts = {
        "orders": select(
            Order.user_id,
            func.count(Order.id),
            func.count(case((Order.status == OrderStatus.PLACED, 1))),
            func.count(distinct(Order.device_id)),
        )
        .where(Order.user_id.in_(ids))
        .group_by(Order.user_id),
        "devices": select(KnownDevice.user_id, func.count(KnownDevice.id), none, none)
        .where(KnownDevice.user_id.in_(ids))
        .group_by(KnownDevice.user_id),
        "changes": select(AuditEvent.user_id, func.count(AuditEvent.id), none, none)
        .where(AuditEvent.user_id.in_(ids), AuditEvent.event == audit.Event.PHONE_CHANGED)
        .group_by(AuditEvent.user_id),
        "failures": select(
            OtpFailure.user_id,
            func.count(OtpFailure.id),
            func.count(case((OtpFailure.at > day_ago, 1))),
            none,
        )
        .where(OtpFailure.user_id.in_(ids))
        .group_by(OtpFailure.user_id),
    }
    counted = union_all(
        *(part.add_columns(literal(name).label("part")) for name, part in parts.items())
    )
    found: dict[str, dict[int, tuple[int, int, int]]] = {name: {} for name in parts}
    for user_id, first, second, third, part in db.session.execute(counted):
        found[part][user_id] = (first, second, third)
    nothing = (0, 0, 0)
    by_account = {}
    for user_id, user in accounts.items():
        orders, placed, order_devices = found["orders"].get(user_id, nothing)
        failed_codes, failed_codes_24h, _ = found["failures"].get(user_id, nothing)
        by_account[user_id] = ShopperHistory(
            user_id=user_id,
            email=user.email,
            joined_at=user.created_at,
            orders=orders,
            placed=placed,
            devices=found["devices"].get(user_id, nothing)[0],
            order_devices=order_devices,
            phone_changes=found["changes"].get(user_id, nothing)[0],
            phone_changed_at=user.phone_changed_at,
            failed_codes=failed_codes,
            failed_codes_24h=failed_codes_24h,
        )
    return by_account


@dataclass(frozen=True)
class StepUpState:
    failures: int  # wrong codes counted now (24 h, after any unlock)
    limit: int
    reset_failures: int = 0  # wrong password-reset codes, counted apart (shop/otp/lockout.py)

    @property
    def locked(self) -> bool:
        return self.failures >= self.limit

    @property
    def reset_locked(self) -> bool:
        return self.reset_failures >= self.limit


@dataclass(frozen=True)
class AccountOverview:
    user: User
    history: ShopperHistory
    step_up: StepUpState
    devices: list[KnownDevice]
    orders: list[Order]
    api_tokens: list[ApiToken]
    alerts_off: list[str]  # in words: the alerts the account holder does not get


def step_up_state(user: User) -> StepUpState:
    lockout = otp.service().lockout
    return StepUpState(
        lockout.failures_in_window(user),
        lockout.policy.max_account_failures,
        lockout.failures_in_window(user, reset=True),
    )


def alerts_off(user: User) -> list[str]:
    off = []
    if not user.alert_new_device:
        off.append("sign-in from a new device (turned off)")
    if not user.alert_order_placed:
        off.append("order placed (turned off)")
    if user.sms_stopped:
        off.append("every optional alert: the number answered STOP")
    return off


def overview(user: User) -> AccountOverview:
    devices = db.session.scalars(
        select(KnownDevice)
        .where(KnownDevice.user_id == user.id)
        .order_by(KnownDevice.last_seen_at.desc())
    ).all()
    orders = db.session.scalars(
        select(Order).where(Order.user_id == user.id).order_by(Order.id.desc()).limit(RECENT_ORDERS)
    ).all()
    return AccountOverview(
        user=user,
        history=histories([user])[user.id],
        step_up=step_up_state(user),
        devices=list(devices),
        orders=list(orders),
        api_tokens=tokens.live_tokens(user),
        alerts_off=alerts_off(user),
    )


def events_before(user: User, before_id: int | None, limit: int) -> tuple[list[AuditEvent], bool]:
    """The account's audit events, newest first, older than `before_id`; and whether more
    follow (keyset on the id, through the index on (user_id, id))."""
    query = select(AuditEvent).where(AuditEvent.user_id == user.id)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    rows = list(db.session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit
