"""The owner's figures per factor: order step-ups by the strongest factor offered, how many
were confirmed, and with what. One grouped query over the latest `SAMPLE` order step-ups of a
window of creation times (newest first on its index), so that a busy week costs what a quiet
one does; the dashboard says so when the week holds more."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from shop.extensions import db
from shop.models import Factor, OtpPurpose, StepUp
from shop.risk.figures import Rate
from shop.stepup.steps import STRONGEST_FIRST

# The latest order step-ups the figures read (some 20,000 a week at a million orders a
# month), as many as the SMS console reads codes.
SAMPLE = 2_000


@dataclass
class FactorFigures:
    factor: Factor
    offered_first: int = 0  # order step-ups that offered it as the strongest factor
    confirmed: int = 0  # of those, confirmed by any factor
    fell_back_to_sms: int = 0  # of those, confirmed by SMS although this was offered first
    answered_with: int = 0  # order step-ups (whatever was offered) confirmed with it

    @property
    def conversion(self) -> Rate:
        return Rate(self.confirmed, self.offered_first)


def factor_figures(since: datetime) -> tuple[list[FactorFigures], bool]:
    """Per factor, strongest first, over the latest `SAMPLE` order step-ups created at or
    after `since`; and whether the sample was full (the figures then read the latest only)."""
    figures = {factor: FactorFigures(factor) for factor in STRONGEST_FIRST}
    latest = (
        select(StepUp.factors, StepUp.factor)
        .where(StepUp.purpose == OtpPurpose.ORDER, StepUp.created_at >= since)
        .order_by(StepUp.created_at.desc())
        .limit(SAMPLE)
        .subquery()
    )
    rows = db.session.execute(
        select(latest.c.factors, latest.c.factor, func.count()).group_by(
            latest.c.factors, latest.c.factor
        )
    ).all()
    for offered, answered, count in rows:
        first = next(iter(filter(None, offered.split(","))), None)
        if first in figures:
            figures[Factor(first)].offered_first += count
            if answered is not None:
                figures[Factor(first)].confirmed += count
                if answered == Factor.SMS and first != Factor.SMS:
                    figures[Factor(first)].fell_back_to_sms += count
        if answered in figures:
            figures[Factor(answered)].answered_with += count
    return list(figures.values()), sum(count for *_, count in rows) >= SAMPLE
