"""The code page: what it says of its code, its live status JSON, and an honest resend button."""

import re

from sqlalchemy import func, select, update

from shop.extensions import db
from shop.models import AuditEvent, OtpChallenge, SmsMessage, SmsStatus
from shop.otp import Otp
from shop.sms.delivery import DeliveryWorker
from shop.sms.senders import ConsoleSender
from shop.web.code_page import duration
from tests.factories import ADDRESS, PASSWORD, fill_cart, make_product, make_user

RESEND_BUTTON = re.compile(r"<button[^>]*data-resend[^>]*>", re.S)


def rows() -> tuple[int, int, int]:
    db.session.expire_all()
    return tuple(
        db.session.scalar(select(func.count()).select_from(model))
        for model in (OtpChallenge, SmsMessage, AuditEvent)
    )


def start_order(client, user) -> str:
    fill_cart(user, (make_product(price_minor=30_000, stock=5), 1))
    response = client.post_form("/checkout", {**ADDRESS, "idempotency_key": "code-page-key-0001"})
    return response.headers["Location"].rsplit("/", 1)[-1]


def register(client, number: int):
    return client.post_form(
        "/auth/register",
        {
            "email": f"new{number}@example.com",
            "phone": f"07700 900{number:03d}",
            "password": "long enough pw",
        },
    )


def test_the_status_counts_down_and_follows_delivery(client, frozen_clock):
    user = make_user()
    client.sign_in_as(user)
    ref = start_order(client, user)
    status = client.get(f"/checkout/verify/{ref}/status")
    assert status.status_code == 200 and status.headers["Cache-Control"] == "no-store"
    body = status.json
    assert body["live"] and body["delivery"] == "queued"
    assert body["delivery_text"] == "Message waiting to be sent."
    assert (body["expires_in_seconds"], body["resend_in_seconds"], body["tries_left"]) == (
        300,
        30,
        5,
    )
    assert body["resend_blocked"] is None

    frozen_clock.advance(seconds=100)
    DeliveryWorker(ConsoleSender()).run_once()
    body = client.get(f"/checkout/verify/{ref}/status").json
    assert (body["expires_in_seconds"], body["resend_in_seconds"]) == (200, 0)
    assert body["delivery_text"] == "Message sent to your phone's network."

    db.session.execute(update(SmsMessage).values(status=SmsStatus.FAILED))
    db.session.commit()
    body = client.get(f"/checkout/verify/{ref}/status").json
    assert body["delivery_failed"] and "ask for a new code" in body["delivery_text"]
    page = client.get(f"/checkout/verify/{ref}").get_data(as_text=True)
    assert "delivery-failed" in page and "3 min 20 s" in page

    frozen_clock.advance(seconds=200)
    body = client.get(f"/checkout/verify/{ref}/status").json
    assert not body["live"] and body["expires_in_seconds"] == 0


def test_polling_the_status_changes_nothing(client, frozen_clock):
    user = make_user()
    client.sign_in_as(user)
    ref = start_order(client, user)
    before = rows()
    for _ in range(3):
        assert client.get(f"/checkout/verify/{ref}/status").status_code == 200
    frozen_clock.advance(minutes=10)  # lapsed: still a GET, still nothing changes
    assert client.get(f"/checkout/verify/{ref}/status").json["live"] is False
    assert rows() == before


def test_the_status_belongs_to_the_pages_session(client, app):
    user = make_user()
    client.sign_in_as(user)
    ref = start_order(client, user)
    stranger = app.test_client()
    assert stranger.get(f"/checkout/verify/{ref}/status").status_code == 302  # sign in first
    stranger.sign_in_as(make_user())
    assert stranger.get(f"/checkout/verify/{ref}/status").status_code == 404
    assert stranger.get("/auth/login/verify/status").status_code == 404  # no sign-in waiting
    assert app.test_client().get("/auth/verify-phone/status").status_code == 302


def test_the_sign_in_status_follows_the_pending_sign_in(client):
    user = make_user()
    client.post_form("/auth/login", {"email": user.email, "password": PASSWORD})
    body = client.get("/auth/login/verify/status").json
    assert body["live"] and body["masked_phone"].startswith("+44 ")


def test_the_page_renders_the_same_facts_for_a_browser_without_scripts(client, frozen_clock):
    user = make_user()
    client.sign_in_as(user)
    ref = start_order(client, user)
    page = client.get(f"/checkout/verify/{ref}").get_data(as_text=True)
    assert (
        "It works for <span data-expires-in>5 min 00 s</span> <span data-expiry-from>more" in page
    )
    assert 'data-code-status="/checkout/verify/' in page and "Reload this page" in page
    assert "autofocus" in page and 'id="code-status-data"' in page
    button = RESEND_BUTTON.search(page).group(0)
    assert "disabled" in button and "You can ask for one in 30 s." in page
    frozen_clock.advance(seconds=30)
    page = client.get(f"/checkout/verify/{ref}").get_data(as_text=True)
    assert "disabled" not in RESEND_BUTTON.search(page).group(0)


def register_and_sign_in(client, number: int):
    """Register (which sends nothing), then sign in: that sends the code for the number."""
    register(client, number)
    return client.post_form(
        "/auth/login", {"email": f"new{number}@example.com", "password": "long enough pw"}
    )


def test_the_first_sign_in_says_when_its_code_could_not_be_sent(client, app):
    # Many sign-ups from one address in a minute: not what this test is about.
    app.config["SIGN_IN_RATE_LIMIT"] = "1000 per minute"
    # Five numbers from one address in an hour is the pumping limit: the sixth is refused.
    for number in range(101, 106):
        register_and_sign_in(app.test_client(), number)
    response = register_and_sign_in(client, 106)
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "could not send the code that confirms your number" in page
    assert "with the code we sent" not in page
    assert "No code is waiting" in page
    # "Send a new code" would only repeat the refusal: disabled, and the page says why.
    button = RESEND_BUTTON.search(page).group(0)
    assert "disabled" in button and 'aria-describedby="resend-note"' in button
    assert "A new code cannot be sent now. Codes were sent to too many numbers" in page
    assert "You can ask again in 1 h 00 min." in page
    body = client.get("/auth/verify-phone/status").json
    assert body["resend_blocked"].startswith("Codes were sent to too many numbers")


def test_the_first_sign_in_with_a_code_sent_says_so(client):
    response = register_and_sign_in(client, 107)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Confirm your number with the code we sent." in page
    assert "disabled" in RESEND_BUTTON.search(page).group(0)  # the 30 s cool-down


def test_durations_read_as_a_person_would_say_them():
    assert [duration(s) for s in (0, 45, 60, 245, 3599, 3600, 5400)] == [
        "0 s",
        "45 s",
        "1 min 00 s",
        "4 min 05 s",
        "59 min 59 s",
        "1 h 00 min",
        "1 h 30 min",
    ]


def test_a_queued_code_works_for_the_whole_validity_once_it_goes_out(client, frozen_clock):
    user = make_user()
    client.post_form("/auth/login", {"email": user.email, "password": PASSWORD})
    page = client.get("/auth/login/verify").get_data(as_text=True)
    assert "5 min 00 s</span> <span data-expiry-from>more" in page
    frozen_clock.advance(seconds=10)
    client.post_form("/auth/login/verify/resend")  # refused: inside the cool-down
    other = make_user(phone=user.phone)  # a second account on the same number
    client.sign_in_as(other)
    fill_cart(other, (make_product(price_minor=30_000, stock=5), 1))
    response = client.post_form("/checkout", {**ADDRESS, "idempotency_key": "queued-key-000001"})
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "in 20 seconds" in page
    assert "5 min 00 s</span> <span data-expiry-from>once it goes out" in page
    body = client.get(f"{response.headers['Location']}/status").json
    assert (body["queued_seconds"], body["works_for_seconds"]) == (20, 300)


def test_the_page_renders_the_configured_validity(client, app, frozen_clock):
    app.extensions["otp"] = Otp.from_config({**app.config, "OTP_VALIDITY_SECONDS": 120})
    user = make_user()
    client.sign_in_as(user)
    ref = start_order(client, user)
    page = client.get(f"/checkout/verify/{ref}").get_data(as_text=True)
    assert "It works for <span data-expires-in>2 min 00 s</span>" in page
    assert "5 min" not in page
