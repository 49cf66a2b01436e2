"""Who has an account cannot be learnt from sign-in or registration: not by the body, the
status, the cookies or the time of the answer (SPEC section 7; defect 5 for registration).

Timing: the medians of 200 interleaved tries of each kind must be within 10 ms. The hash is
scrypt with a smaller cost than production's here (about 25 ms instead of 500): skipping it
on one path would still show as a gap well over 10 ms, and the suite stays quick.
"""

import statistics
import time
from itertools import count

import pytest
from sqlalchemy import func, select

from shop.extensions import db
from shop.models import SmsKind, SmsMessage, User
from tests.conftest import CSRF_FIELD
from tests.factories import make_user

FAST_HASH = "scrypt:4096:8:1"
TRIES = 200
MAX_GAP = 0.010
_emails = count()
_addresses = count()


def new_address() -> dict:
    """A client address of its own for each try, so that the rate limits stay out of it."""
    number = next(_addresses)
    return {"REMOTE_ADDR": f"10.{number // 250 % 250}.{number % 250}.1"}


def comparable(response, typed: str = "") -> tuple:
    """What a client sees of an answer, less the per-form CSRF token and the e-mail it typed
    (which the form shows back)."""
    body = CSRF_FIELD.sub("csrf", response.get_data(as_text=True))
    if typed:
        body = body.replace(typed, "EMAIL")
    cookies = sorted(header.split("=", 1)[0] for header in response.headers.getlist("Set-Cookie"))
    return response.status_code, response.headers.get("Location"), body, cookies


def session_of(app, client) -> dict:
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    serializer = app.session_interface.get_signing_serializer(app)
    data = serializer.loads(cookie.value) if cookie else {}
    data.pop("csrf_token", None)
    return data


@pytest.fixture
def fast_app(build_app):
    app = build_app(PASSWORD_HASH_METHOD=FAST_HASH)
    with app.app_context():
        yield app


def holder(app) -> User:
    user = make_user("holder@example.com")
    from werkzeug.security import generate_password_hash

    user.password_hash = generate_password_hash("the holder's password", method=FAST_HASH)
    db.session.commit()
    return user


def sign_in(app, email: str):
    client = app.test_client()
    client.environ_base.update(new_address())
    token = client.csrf_token()
    started = time.perf_counter()
    response = client.post(
        "/auth/login", data={"csrf_token": token, "email": email, "password": "a wrong guess"}
    )
    return time.perf_counter() - started, response, client


def register(app, email: str):
    client = app.test_client()
    client.environ_base.update(new_address())
    token = client.csrf_token()
    form = {
        "csrf_token": token,
        "email": email,
        "phone": "07700 900555",
        "password": "an attacker's password",
    }
    started = time.perf_counter()
    response = client.post("/auth/register", data=form)
    return time.perf_counter() - started, response, client


def interleaved(attempt, first, second) -> tuple[list[float], list[float]]:
    """TRIES of each, alternating which goes first."""
    times_first, times_second = [], []
    for round_number in range(TRIES):
        pair = [(first, times_first), (second, times_second)]
        for make, times in pair if round_number % 2 == 0 else pair[::-1]:
            times.append(attempt(make())[0])
    return times_first, times_second


def test_sign_in_answers_an_unknown_email_as_a_wrong_password(fast_app):
    holder(fast_app)
    _, unknown, unknown_client = sign_in(fast_app, "nobody@example.com")
    _, wrong, wrong_client = sign_in(fast_app, "holder@example.com")
    assert comparable(unknown, "nobody@example.com") == comparable(wrong, "holder@example.com")
    assert unknown.status_code == 401
    assert session_of(fast_app, unknown_client) == session_of(fast_app, wrong_client)


def test_sign_in_takes_as_long_for_an_unknown_email_as_for_a_wrong_password(fast_app):
    holder(fast_app)
    unknown, wrong = interleaved(
        lambda email: sign_in(fast_app, email),
        lambda: "nobody@example.com",
        lambda: "holder@example.com",
    )
    gap = abs(statistics.median(unknown) - statistics.median(wrong))
    assert gap < MAX_GAP, (statistics.median(unknown), statistics.median(wrong))


def test_registration_answers_a_taken_email_as_a_new_one(fast_app):
    owner = holder(fast_app)
    _, new, new_client = register(fast_app, "brand.new@example.com")
    _, taken, taken_client = register(fast_app, "Holder@Example.com")
    assert comparable(new) == comparable(taken)
    assert (new.status_code, new.headers["Location"]) == (302, "/auth/login")
    assert session_of(fast_app, new_client) == session_of(fast_app, taken_client)
    # The page the redirect leads to reads the same too.
    assert comparable(new_client.get("/auth/login")) == comparable(taken_client.get("/auth/login"))
    # Nothing for the number typed in; the holder is told on their own number.
    told = select(SmsMessage.kind).where(SmsMessage.user_id == owner.id)
    assert db.session.scalars(told).all() == [SmsKind.ALERT_REGISTRATION_TRIED]
    assert db.session.scalar(select(func.count(User.id))) == 2


def test_registration_takes_as_long_for_a_taken_email_as_for_a_new_one(fast_app):
    holder(fast_app)
    new, taken = interleaved(
        lambda email: register(fast_app, email),
        lambda: f"new{next(_emails)}@example.com",
        lambda: "holder@example.com",
    )
    gap = abs(statistics.median(new) - statistics.median(taken))
    assert gap < MAX_GAP, (statistics.median(new), statistics.median(taken))


def test_registration_and_sign_in_share_one_rate_limit(build_app):
    app = build_app()  # SIGN_IN_RATE_LIMIT: 10 per minute per address
    with app.app_context():
        client = app.test_client()
        statuses = [
            client.post_form("/auth/register", {"email": f"p{n}@example.com"}).status_code
            for n in range(6)
        ]
        statuses += [
            client.post_form("/auth/login", {"email": f"p{n}@example.com"}).status_code
            for n in range(5)
        ]
    assert statuses == [422] * 10 + [429]
