"""Orders: placing them from the cart, and what happens to them afterwards."""

from shop.orders.lifecycle import (
    OPEN_STATUSES,
    cancel_open_orders,
    confirm,
    expire_pending,
    hold,
    lapsed,
    record_decision,
    release,
)
from shop.orders.placement import (
    CheckoutContext,
    CheckoutError,
    EmptyCart,
    IdempotencyConflict,
    OutOfStock,
    ShippingAddress,
    address_of,
    decide,
    fingerprint,
    new_order_ref,
    place_order,
)

__all__ = [
    "OPEN_STATUSES",
    "CheckoutContext",
    "CheckoutError",
    "EmptyCart",
    "IdempotencyConflict",
    "OutOfStock",
    "ShippingAddress",
    "address_of",
    "cancel_open_orders",
    "confirm",
    "decide",
    "expire_pending",
    "fingerprint",
    "hold",
    "lapsed",
    "new_order_ref",
    "place_order",
    "record_decision",
    "release",
]
