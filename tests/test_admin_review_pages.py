"""The review on the web: the queue on /admin, the order page, approve and cancel POSTs with a
required note, and every way a request can be wrong (4xx, nothing changed)."""

import re

import pytest
from sqlalchemy import func, select

from shop.blueprints.admin.reviews import QUEUE_PAGE
from shop.extensions import db
from shop.models import AuditEvent, Order, OrderStatus, SmsMessage
from tests.factories import make_held_order, make_user, text_of


def status_of(ref: str) -> str:
    db.session.expire_all()
    return db.session.scalar(select(Order.status).where(Order.ref == ref))


def nothing_sent() -> bool:
    return (
        db.session.scalar(select(func.count(SmsMessage.id)).where(SmsMessage.kind.like("order_%")))
        == 0
    )


def test_the_queue_comes_first_on_the_dashboard_with_the_count_in_the_navigation(
    client, owner, frozen_clock
):
    first = make_held_order()
    frozen_clock.advance(minutes=5)
    second = make_held_order()
    page = text_of(client.get("/admin"))
    nav = re.search(r'<nav class="admin-nav".*?</nav>', page, re.S).group(0)
    assert 'data-held="2"' in nav and "Review queue: 2 held" in nav
    queue = re.search(r'<section id="review".*?</section>', page, re.S).group(0)
    assert page.index('id="review"') < page.index("Step-up and SMS")
    assert queue.index(first.ref) < queue.index(second.ref)  # oldest first
    assert "Large orders are reviewed by the shop first." in queue
    assert "joined" in queue and 'data-history="orders">1 (0 placed)' in queue
    assert "Held for the shop's review." in queue
    assert f'action="/admin/orders/{first.ref}/approve"' in queue
    assert f'action="/admin/orders/{first.ref}/cancel"' in queue
    assert f'<label for="approve-note-{first.ref}">' in queue


def test_the_queue_pages_by_reference(client, owner, frozen_clock):
    refs = []
    last = QUEUE_PAGE - 1  # the last of the first page
    for _ in range(QUEUE_PAGE + 2):
        refs.append(make_held_order().ref)
        frozen_clock.advance(seconds=1)
    first = text_of(client.get("/admin"))
    assert refs[last] in first and refs[last + 1] not in first
    assert f"/admin?after={refs[last]}#review" in first
    second = text_of(client.get(f"/admin?after={refs[last]}"))
    assert refs[last + 1] in second and refs[last + 2] in second and refs[0] not in second
    assert client.get("/admin?after=nonsense").status_code == 400


def test_approve_from_the_queue(client, owner):
    order = make_held_order()
    response = client.post_form(f"/admin/orders/{order.ref}/approve", {"note": "Known buyer."})
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin#review"
    assert status_of(order.ref) == OrderStatus.PLACED
    page = text_of(client.get("/admin"))
    assert f"Order {order.ref} is approved and placed." in page
    assert "Nothing to review: no order is held." in page


def test_approve_asking_for_a_code(client, owner):
    order = make_held_order()
    response = client.post_form(
        f"/admin/orders/{order.ref}/approve", {"note": "Check with a code.", "ask_code": "y"}
    )
    assert response.status_code == 302
    assert status_of(order.ref) == OrderStatus.PENDING_VERIFICATION


def test_cancel_from_the_order_page(client, owner):
    order = make_held_order()
    page = text_of(client.get(f"/admin/orders/{order.ref}"))
    assert "Held: needs your review" in page and "Timeline" in page
    response = client.post_form(f"/admin/orders/{order.ref}/cancel", {"note": "Fraud ring."})
    assert response.status_code == 302
    assert status_of(order.ref) == OrderStatus.CANCELLED
    page = text_of(client.get(f"/admin/orders/{order.ref}"))
    assert "Cancelled by boss@example.com." in page and "Fraud ring." in page
    assert "Your decision" not in page  # no forms once it is decided


@pytest.mark.parametrize("action", ["approve", "cancel"])
def test_a_missing_note_is_422_and_changes_nothing(client, owner, action):
    order = make_held_order()
    for data in ({}, {"note": ""}, {"note": "   "}):
        response = client.post_form(f"/admin/orders/{order.ref}/{action}", data)
        assert response.status_code == 422
        assert "Write a note saying why" in text_of(response)
    assert status_of(order.ref) == OrderStatus.HELD
    assert nothing_sent()


def test_a_note_too_long_is_422(client, owner):
    order = make_held_order()
    response = client.post_form(f"/admin/orders/{order.ref}/cancel", {"note": "x" * 501})
    assert response.status_code == 422
    assert status_of(order.ref) == OrderStatus.HELD


@pytest.mark.parametrize("action", ["approve", "cancel"])
def test_an_order_no_longer_held_is_409(client, owner, action):
    order = make_held_order()
    client.post_form(f"/admin/orders/{order.ref}/cancel", {"note": "first"})
    response = client.post_form(f"/admin/orders/{order.ref}/{action}", {"note": "second"})
    assert response.status_code == 409
    assert "already handled" in text_of(response)
    assert status_of(order.ref) == OrderStatus.CANCELLED
    assert (
        db.session.scalar(
            select(func.count(AuditEvent.id)).where(AuditEvent.event == "order_cancelled")
        )
        == 1
    )


def test_unknown_orders_are_404(client, owner):
    assert client.get("/admin/orders/SH-NOSUCH00").status_code == 404
    response = client.post_form("/admin/orders/SH-NOSUCH00/approve", {"note": "x"})
    assert response.status_code == 404


def test_tampered_forms_are_400(client, owner):
    order = make_held_order()
    url = f"/admin/orders/{order.ref}/cancel"
    assert client.post_form(url, {"note": "x", "refund": "1"}).status_code == 400
    token = client.csrf_token()
    doubled = client.post(url, data={"csrf_token": token, "note": ["a", "b"]})
    assert doubled.status_code == 400
    assert client.post(url, data={"note": "no token"}).status_code == 400
    assert status_of(order.ref) == OrderStatus.HELD


@pytest.mark.parametrize("action", ["approve", "cancel"])
def test_a_shopper_forging_an_owner_post_gets_403_and_changes_nothing(client, action):
    order = make_held_order()
    client.sign_in_as(make_user())
    response = client.post_form(f"/admin/orders/{order.ref}/{action}", {"note": "me"})
    assert response.status_code == 403
    assert status_of(order.ref) == OrderStatus.HELD
    assert nothing_sent()


def test_anonymous_posts_go_to_sign_in(client):
    order = make_held_order()
    response = client.post_form(f"/admin/orders/{order.ref}/approve", {"note": "me"})
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    assert status_of(order.ref) == OrderStatus.HELD


def test_the_orders_list_links_each_order_and_account(client, owner):
    order = make_held_order()
    page = text_of(client.get("/admin/orders"))
    assert f'href="/admin/orders/{order.ref}"' in page
    assert f'href="/admin/accounts/{order.user_id}"' in page
