"""The owner's figures per factor: order step-ups by the strongest factor offered, how many
were confirmed, and with what. One grouped query over `step_ups` in a window of creation
times (indexed), kept apart from the dashboard's other figures."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from shop.extensions import db
from shop.models import Factor, OtpPurpose, StepUp
from shop.risk.figures import Rate
from shop.stepup.steps import STRONGEST_FIRST


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


def factor_figures(since: datetime) -> list[FactorFigures]:
    """Per factor, strongest first, over the order step-ups created at or after `since`."""
    figures = {factor: FactorFigures(factor) for factor in STRONGEST_FIRST}
    rows = db.session.execute(
        select(StepUp.factors, StepUp.factor, func.count())
        .where(StepUp.purpose == OtpPurpose.ORDER, StepUp.created_at >= since)
        .group_by(StepUp.factors, StepUp.factor)
    )
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
    return list(figures.values())
