"""The database models; importing this package registers every table on the metadata."""

from shop.models.cart import Cart, CartItem
from shop.models.catalog import Product
from shop.models.order import Order, OrderItem, OrderStatus
from shop.models.user import Role, User

__all__ = ["Cart", "CartItem", "Order", "OrderItem", "OrderStatus", "Product", "Role", "User"]
