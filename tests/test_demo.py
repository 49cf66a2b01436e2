"""Demo data and the owner command."""

from sqlalchemy import func, select

from shop.demo import DEMO_OWNER, DEMO_SHOPPER, HISTORY_CUSTOMERS, PRODUCTS
from shop.extensions import db
from shop.models import Product, Role, User


def test_seed_demo_loads_the_catalog_and_accounts_once(runner):
    first = runner.invoke(args=["seed-demo"])
    second = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0 and second.exit_code == 0
    assert DEMO_SHOPPER.email in first.output and DEMO_SHOPPER.password in first.output
    assert DEMO_OWNER.email in first.output and DEMO_OWNER.password in first.output
    assert db.session.scalar(select(func.count(Product.id))) == 24
    assert db.session.scalar(select(func.count(User.id))) == 2 + len(HISTORY_CUSTOMERS)
    owner = db.session.scalar(select(User).where(User.email == DEMO_OWNER.email))
    shopper = db.session.scalar(select(User).where(User.email == DEMO_SHOPPER.email))
    assert owner.role == Role.OWNER and shopper.role == Role.SHOPPER
    assert shopper.phone.startswith("+447700900") and shopper.phone_verified


def test_demo_catalog_spans_every_risk_band():
    prices = [price for _, price, _, _ in PRODUCTS]
    assert len(PRODUCTS) == 24
    assert min(prices) == 499
    assert sum(price < 3000 for price in prices) >= 3
    assert sum(10000 <= price <= 25000 for price in prices) >= 3
    assert sum(price > 25000 for price in prices) >= 3
    assert sum(price > 500000 for price in prices) == 1
    assert sum(1 <= stock <= 3 for _, _, stock, _ in PRODUCTS) >= 3


def test_create_owner(runner):
    result = runner.invoke(
        args=["create-owner", "Boss@Example.com", "07700 900777", "--password", "long enough"]
    )
    assert result.exit_code == 0, result.output
    owner = db.session.scalar(select(User).where(User.email == "boss@example.com"))
    assert owner.role == Role.OWNER
    assert owner.phone == "+447700900777"
    assert owner.phone_verified


def test_create_owner_refuses_bad_input(runner):
    cases = [
        (["not-an-email", "07700 900777", "--password", "long enough"], "EMAIL"),
        (["a@example.com", "+1 202 555 0100", "--password", "long enough"], "PHONE"),
        (["a@example.com", "07700 900777", "--password", "short"], "--password"),
    ]
    for args, hint in cases:
        result = runner.invoke(args=["create-owner", *args])
        assert result.exit_code == 2
        assert hint in result.output
    assert db.session.scalar(select(func.count(User.id))) == 0
