"""SMS pumping: a bot of 1,000 send attempts over 100 numbers, 10 client addresses and 5
countries, through HTTP (phone changes and resends from signed-in bot accounts).

It ends with provider calls within the caps of SPEC section 5 (per number 5 in 10 minutes,
per address 5 numbers and 30 codes an hour), none outside the allowed countries, and every
attempt accounted for: a code, or a refusal recorded with its reason.
"""

from collections import Counter
from itertools import cycle

from sqlalchemy import func, select

from shop.extensions import db
from shop.models import OtpChallenge, SendRefusal, SmsMessage, SmsStatus
from shop.sms.delivery import DeliveryWorker
from shop.sms.senders import Accepted, ConsoleSender
from tests.factories import PASSWORD, make_user, password_hash

ATTEMPTS = 1_000
ADDRESSES = [f"198.51.100.{n}" for n in range(1, 11)]
BOTS = 20
# 20 numbers in each of 5 countries; only GB may be texted (SMS_ALLOWED_COUNTRIES).
NUMBERS = (
    [f"+447700900{n:03d}" for n in range(200, 220)]
    + [f"+336123456{n:02d}" for n in range(20)]
    + [f"+4915123456{n:03d}" for n in range(20)]
    + [f"+12025550{n:03d}" for n in range(100, 120)]
    + [f"+23480312345{n:02d}" for n in range(20)]
)


class CountingSender(ConsoleSender):
    """The console backend, counting what is handed to the "provider"."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()

    def send(self, message: SmsMessage) -> Accepted:
        self.sent[message.to_number] += 1
        return super().send(message)


def test_a_pumping_bot_stays_within_the_caps_and_every_refusal_is_recorded(app, frozen_clock):
    assert len(NUMBERS) == 100 and len(set(NUMBERS)) == 100
    bots = []
    for number in range(BOTS):
        user = make_user(f"bot{number}@example.com")
        user.password_hash = password_hash(PASSWORD, "pbkdf2:sha256:1000")  # a quick bot
        browser = app.test_client()
        browser.sign_in_as(user)
        bots.append((user, browser, browser.csrf_token()))
    sender = CountingSender()
    worker = DeliveryWorker(sender)

    statuses: Counter[int] = Counter()
    targets = cycle(NUMBERS)
    for attempt in range(ATTEMPTS):
        user, browser, token = bots[attempt % BOTS]
        address = {"REMOTE_ADDR": ADDRESSES[attempt % len(ADDRESSES)]}
        if attempt % 4 == 3:  # now and then "send me a new code" instead
            response = browser.post(
                "/auth/verify-phone/resend", data={"csrf_token": token}, environ_base=address
            )
        else:
            form = {"csrf_token": token, "phone": next(targets), "password": PASSWORD}
            response = browser.post("/account/phone", data=form, environ_base=address)
        statuses[response.status_code] += 1
        if attempt % 100 == 99:  # the bot keeps going while time passes and SMS go out
            frozen_clock.advance(seconds=60)
            while worker.run_once():
                pass
    for _ in range(10):  # what was queued behind a cool-down goes out, or lapses
        frozen_clock.advance(seconds=30)
        while worker.run_once():
            pass

    assert sum(statuses.values()) == ATTEMPTS and statuses.keys() <= {302, 422}
    # Every attempt is accounted for: a code, or a refusal with its reason.
    challenges = db.session.scalar(select(func.count(OtpChallenge.id)))
    refusals = Counter(db.session.scalars(select(SendRefusal.reason)))
    assert challenges + sum(refusals.values()) == ATTEMPTS
    assert {"country_not_allowed", "ip_numbers"} <= set(refusals)

    # Provider calls: only GB numbers, each within its cap, each address within its caps.
    assert all(number.startswith("+44") for number in sender.sent), sender.sent
    assert all(count <= 5 for count in sender.sent.values()), sender.sent
    sent_from = Counter()
    numbers_from: dict[str, set[str]] = {}
    for ip, phone in db.session.execute(
        select(OtpChallenge.client_ip, OtpChallenge.phone)
        .join(SmsMessage, SmsMessage.id == OtpChallenge.sms_id)
        .where(SmsMessage.status.in_([SmsStatus.SENT, SmsStatus.DELIVERED]))
    ):
        sent_from[ip] += 1
        numbers_from.setdefault(ip, set()).add(phone)
    assert sum(sent_from.values()) == sum(sender.sent.values())
    assert all(count <= 30 for count in sent_from.values()), sent_from
    assert all(len(numbers) <= 5 for numbers in numbers_from.values()), numbers_from
    assert 0 < sum(sender.sent.values()) <= len(ADDRESSES) * 5 * 5
    outside = select(func.count(SmsMessage.id)).where(~SmsMessage.to_number.like("+44%"))
    assert db.session.scalar(outside) == 0  # not even queued
