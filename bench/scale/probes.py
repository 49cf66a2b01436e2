"""The figures of the scale table, in the order they are measured: each a `Probe` on the
app driven by `bench.scale.visitors.Shop`."""

from bench.scale.timing import Probe
from bench.scale.visitors import IDLE_CPU_SECONDS, PRUNE_BATCH, Shop, visit
from shop.models import AuditEvent, SmsMessage


def probes(shop: Shop, *, runs: int) -> list[Probe]:
    """Every figure, in the order they are measured."""
    visitor, owner, shopper = shop.visitor, shop.owner, shop.shopper
    shop.new_buyers(runs + 1)
    return [
        Probe(
            "catalog_after_stock_change",
            "GET / (returning visitor) after a stock change",
            lambda: visit(visitor, "/"),
            shop.stock_change,
        ),
        Probe(
            "catalog_after_product_change",
            "GET / (returning visitor) after a product change",
            lambda: visit(visitor, "/"),
            shop.product_change,
        ),
        Probe("catalog_cached", "GET / (returning visitor), cached", lambda: visit(visitor, "/")),
        Probe("catalog_signed_in_cached", "GET / signed in, cached", lambda: visit(shopper, "/")),
        Probe(
            "backtest",
            "POST /admin/risk/backtest (30 days)",
            shop.backtest,
            shop.prepare_backtest,
        ),
        Probe("admin_sms", "GET /admin/sms", lambda: visit(owner, "/admin/sms")),
        Probe(
            "admin_sms_failed",
            "GET /admin/sms?status=failed",
            lambda: visit(owner, "/admin/sms?status=failed"),
        ),
        Probe(
            "admin_orders_held",
            "GET /admin/orders?status=held",
            lambda: visit(owner, "/admin/orders?status=held"),
        ),
        Probe("admin_dashboard", "GET /admin (dashboard)", lambda: visit(owner, "/admin")),
        Probe(
            "account_security",
            "GET /account/security",
            lambda: visit(shopper, "/account/security"),
        ),
        Probe(
            "checkout",
            "POST /checkout (an order placed at once)",
            shop.checkout,
            shop.prepare_checkout,
        ),
        Probe(
            "worker_claim",
            "delivery worker: claim 10 due messages",
            shop.claim,
            lambda: shop.set_due(True),
        ),
        Probe(
            "worker_expire_pending",
            "delivery worker: expire pending orders, every round",
            shop.expire_round,
        ),
        Probe("worker_sweep", "delivery worker: drop expired codes, every round", shop.sweep_round),
        Probe(
            "worker_idle_round",
            "delivery worker: a whole round with nothing due",
            shop.idle_round,
            lambda: shop.set_due(False),
        ),
        Probe(
            "sms_prune_batch",
            f"flask sms prune: one batch of {PRUNE_BATCH} old messages (the most the web waits)",
            shop.prune_sms,
            lambda: shop.prepare_prune(SmsMessage, SmsMessage.created_at),
        ),
        Probe(
            "audit_prune_batch",
            f"flask audit prune: one batch of {PRUNE_BATCH} old events",
            shop.prune_audit,
            lambda: shop.prepare_prune(AuditEvent, AuditEvent.at),
        ),
        Probe(
            "worker_idle_cpu",
            f"idle `flask sms worker`: CPU over {IDLE_CPU_SECONDS} s",
            shop.idle_worker_cpu,
            lambda: shop.set_due(False),
            explain=False,
            runs=1,
        ),
    ]
