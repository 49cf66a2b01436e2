"""The SMS console: the message log with delivery status, and the signs of SMS pumping
(refused sends by reason, country and source, conversion per country, provider spend)."""

from datetime import timedelta

from flask import render_template
from sqlalchemy import Row, select

from shop import clock, otp, settings
from shop.alerts import mask_not_me_links
from shop.blueprints.admin import FIGURE_WINDOWS, PER_PAGE, bp, choice_arg
from shop.models import SmsMessage, SmsStatus
from shop.models.sms import is_code_kind
from shop.otp.limits import owner_labels
from shop.sms import abuse
from shop.sms.figures import sms_figures
from shop.web.keyset import cursor_arg, newest_first

ABUSE_WINDOWS = (("Last hour", timedelta(hours=1)), ("Last 24 hours", timedelta(hours=24)))
REFUSALS_PAGE = PER_PAGE
SPEND_DAYS = 14
# What a row of the message log shows, read as plain columns (not the worker's lease and
# schedule, and no ORM instance per row).
MESSAGE_ROW = (
    SmsMessage.id,
    SmsMessage.created_at,
    SmsMessage.to_number,
    SmsMessage.kind,
    SmsMessage.status,
    SmsMessage.attempts,
    SmsMessage.last_error,
    SmsMessage.provider_message_id,
    SmsMessage.provider_price,
    SmsMessage.receipt_status,
    SmsMessage.receipt_error_code,
    SmsMessage.receipt_at,
    SmsMessage.body,
    SmsMessage.redacted_body,
)


def shown_body(message: SmsMessage | Row) -> str:
    """What the owner may read of a message (or of a row with its kind and bodies): never a
    code, even one not yet redacted, nor a "not me" link's token (an alert queued before its
    masked copy was kept has its link masked here)."""
    if is_code_kind(message.kind):
        return message.redacted_body or "(code hidden)"
    return message.redacted_body or mask_not_me_links(message.body)


@bp.get("/sms")
def sms() -> str:
    statuses = [status.value for status in SmsStatus]
    status = choice_arg("status", statuses)
    before = cursor_arg("refusals_before", "a refusal number")
    query = select(*MESSAGE_ROW)
    if status:
        query = query.where(SmsMessage.status == status)
    now = clock.now()
    refusals, more_refusals = abuse.refusals_before(before, REFUSALS_PAGE)
    day_ago = now - timedelta(hours=24)
    sends = [(label, abuse.send_figures(now - window)) for label, window in ABUSE_WINDOWS]
    day = sends[-1][1]
    latest = abuse.latest(day_ago)
    return render_template(
        "admin/sms.html",
        page=newest_first(query, SmsMessage, SmsMessage.created_at, PER_PAGE),
        status=status,
        statuses=statuses,
        figures=[(label, sms_figures(now - window)) for label, window in FIGURE_WINDOWS],
        sends=sends,
        # The busiest sources are read from the latest codes and refusals only.
        sample=abuse.SAMPLE,
        sampled=(day.sent > abuse.SAMPLE, day.refused > abuse.SAMPLE),
        countries=day.countries,
        top_numbers=abuse.top_numbers(latest),
        top_addresses=abuse.top_addresses(latest),
        spend=abuse.spend_per_day(now, SPEND_DAYS),
        refusals=refusals,
        more_refusals=more_refusals,
        refusals_before=before,
        shop_settings=settings.current(),
        shown_body=shown_body,
        refusal_label=owner_labels(otp.service().policy),
    )
