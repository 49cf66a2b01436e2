"""The database models; importing this package registers every table on the metadata."""

from shop.models.cart import Cart, CartItem
from shop.models.catalog import CatalogVersion, Product
from shop.models.factors import AuthenticatorApp, Factor, Passkey, RecoveryCode, StepUp
from shop.models.order import Order, OrderEvent, OrderEventKind, OrderItem, OrderStatus
from shop.models.risk import DecisionInputs, RiskRuleSet
from shop.models.security import (
    ApiToken,
    AuditEvent,
    NotMeLink,
    OtpChallenge,
    OtpFailure,
    OtpPurpose,
    SendLock,
    SendRefusal,
)
from shop.models.settings import OwnerAlert, ShopSettingsVersion
from shop.models.sms import ConsoleMessage, InboundMessage, SmsKind, SmsMessage, SmsStatus
from shop.models.tallies import (
    CodeSlotTally,
    CodeTally,
    OrderSlotTally,
    OrderTally,
    RefusalSlotTally,
    RefusalTally,
    SmsSlotTally,
    SmsTally,
    SpendTally,
    StepUpSlotTally,
    StepUpTally,
)
from shop.models.user import KnownDevice, Role, User, UserSession

__all__ = [
    "ApiToken",
    "AuditEvent",
    "AuthenticatorApp",
    "Cart",
    "CartItem",
    "CatalogVersion",
    "CodeSlotTally",
    "CodeTally",
    "ConsoleMessage",
    "DecisionInputs",
    "Factor",
    "InboundMessage",
    "KnownDevice",
    "NotMeLink",
    "Order",
    "OrderEvent",
    "OrderEventKind",
    "OrderItem",
    "OrderSlotTally",
    "OrderStatus",
    "OrderTally",
    "OtpChallenge",
    "OtpFailure",
    "OtpPurpose",
    "OwnerAlert",
    "Passkey",
    "Product",
    "RecoveryCode",
    "RefusalSlotTally",
    "RefusalTally",
    "RiskRuleSet",
    "Role",
    "SendLock",
    "SendRefusal",
    "ShopSettingsVersion",
    "SmsKind",
    "SmsMessage",
    "SmsSlotTally",
    "SmsStatus",
    "SmsTally",
    "SpendTally",
    "StepUp",
    "StepUpSlotTally",
    "StepUpTally",
    "User",
    "UserSession",
]
