"""The owner's figures per factor: order step-ups by the strongest factor offered, how many
were confirmed, and with what. Read from the hourly step-up tallies (shop/tallies), exact,
corrected by the step-ups of the window's edge (shop.tallies.Window): a busy week costs what
a quiet one does."""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func

from shop import tallies
from shop.models import Factor, OtpPurpose, StepUp, StepUpTally
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
    for (offered, answered), count in counted_since(since).items():
        first = next(iter(filter(None, offered.split(","))), None)
        if first in figures:
            figures[Factor(first)].offered_first += count
            if answered:
                figures[Factor(first)].confirmed += count
                if answered == Factor.SMS and first != Factor.SMS:
                    figures[Factor(first)].fell_back_to_sms += count
        if answered in figures:
            figures[Factor(answered)].answered_with += count
    return list(figures.values())


def counted_since(since: datetime) -> Counter[tuple[str, str]]:
    """Order step-ups created at or after `since` by (factors offered, factor that answered,
    "" for none), from the tallies."""
    return tallies.grouped_since(
        StepUpTally,
        "step_ups",
        since,
        group_by=["factors", "factor"],
        recount=counted,
        only={"purpose": OtpPurpose.ORDER},
    )


def counted(since: datetime, until: datetime | None = None) -> Counter[tuple[str, str]]:
    """Order step-ups created in [since, until), counted from their rows."""
    keys = [StepUp.factors, func.coalesce(StepUp.factor, "")]
    where = [StepUp.purpose == OtpPurpose.ORDER]
    return tallies.counted_rows(StepUp.created_at, keys, since, until, where)
