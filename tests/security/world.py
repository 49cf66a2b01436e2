"""A shop with something in it for every route: an owner, a shopper with a placed order and
one waiting for its code, an API token, a "not me" link; and the shop's routes, walked."""

from dataclasses import dataclass

from flask import Flask
from sqlalchemy import select
from werkzeug.routing import Rule

from shop import alerts
from shop.accounts.client import Client
from shop.accounts.tokens import issue_token
from shop.extensions import db
from shop.models import ApiToken, Order, OtpChallenge, Product, Role, User
from shop.orders import ShippingAddress
from shop.orders.checkout import start_checkout
from tests.factories import ADDRESS, ALLOW_ALL, fill_cart, make_product, make_user, set_rules

CLIENT = Client("203.0.113.10", "device-world")
CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class World:
    owner: User
    shopper: User
    other: User  # a second shopper, whose things the first must never reach
    product: Product
    placed: Order
    pending: Order
    challenge: OtpChallenge
    api_token: ApiToken
    api_secret: str
    not_me_token: str

    def path_values(self) -> dict[str, object]:
        """A real value for each path argument of the shop's routes."""
        return {
            "product_id": self.product.id,
            "account_id": self.shopper.id,
            "order_ref": self.pending.ref,
            "challenge_id": self.challenge.public_id,
            "token": self.not_me_token,
            "token_id": self.api_token.id,
            "name": "swagger-ui.css",
            "filename": "shop.css",
        }


def build_world() -> World:
    owner = make_user("owner@example.com", role=Role.OWNER)
    shopper = make_user("shopper@example.com")
    other = make_user("other@example.com")
    product = make_product("Office chair", price_minor=30_000, stock=50)
    pin = make_product("Enamel pin", price_minor=499, stock=50)
    address = ShippingAddress(**ADDRESS)

    set_rules(**ALLOW_ALL.as_dict())
    fill_cart(shopper, (pin, 1))
    placed = start_checkout(shopper, address, "world-placed-key-0001", CLIENT).order
    set_rules()  # the defaults: 300.00 needs a code
    fill_cart(shopper, (product, 1))
    pending = start_checkout(shopper, address, "world-pending-key-001", CLIENT).order
    challenge = db.session.scalar(select(OtpChallenge).where(OtpChallenge.order_id == pending.id))
    secret = issue_token(shopper, "World script", CLIENT)
    api_token = db.session.scalar(select(ApiToken).where(ApiToken.user_id == shopper.id))
    url = alerts.not_me_url(shopper)
    db.session.commit()
    return World(
        owner=owner,
        shopper=shopper,
        other=other,
        product=product,
        placed=placed,
        pending=pending,
        challenge=challenge,
        api_token=api_token,
        api_secret=secret,
        not_me_token=url.rsplit("/", 1)[-1],
    )


def routes(app: Flask) -> list[Rule]:
    """Every route of the app, in a stable order."""
    return sorted(app.url_map.iter_rules(), key=lambda rule: (rule.rule, rule.endpoint))


def methods_of(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})


def url_of(rule: Rule, values: dict[str, object], **replaced: object) -> str:
    """The path of `rule` with `values` for its arguments (`replaced` wins), unchecked:
    hostile values are written into the path as they are, percent-encoded."""
    from urllib.parse import quote

    path = rule.rule
    for argument in rule.arguments:
        value = replaced.get(argument, values[argument])
        start = path.index("<")
        end = path.index(">", start)
        path = path[:start] + quote(str(value), safe="") + path[end + 1 :]
    return path


def is_api(rule: Rule) -> bool:
    return rule.rule.startswith("/api/")


# Bookkeeping, not state: when an API token was last used (written at most every 5 minutes).
BOOKKEEPING = {("api_tokens", "last_used_at")}


def snapshot() -> dict[str, list[tuple]]:
    """Every row of every table: two equal snapshots mean nothing changed."""
    db.session.expire_all()
    tables = {}
    for table in db.metadata.sorted_tables:
        columns = [c for c in table.columns if (table.name, c.name) not in BOOKKEEPING]
        rows = db.session.execute(select(*columns)).all()
        tables[table.name] = sorted(tuple(map(repr, row)) for row in rows)
    db.session.commit()
    return tables
