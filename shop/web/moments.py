"""A moment in a page: `<time datetime="2026-11-02T12:00:00+00:00">02 Nov 2026 12:00</time>`,
the machine-readable instant beside the words (`{{ order.created_at|time_tag('%d %b %Y') }}`).

Every page writes its moments with this one filter rather than spelling the element with
`isoformat()` and `strftime()` called from the template: the owner's lists show a few hundred
moments a page, and each call from a template costs more than the formatting itself.
"""

from datetime import date, datetime

from markupsafe import Markup, escape

NOTHING = "—"  # how the owner's tables show an empty cell


def time_tag(moment: date | datetime | None, shown: str = "%d %b %Y %H:%M") -> Markup:
    """The moment as a `<time>` element, written with the strftime format `shown`; a dash
    when there is none."""
    if moment is None:
        return escape(NOTHING)
    instant, words = escape(moment.isoformat()), escape(moment.strftime(shown))
    return Markup(f'<time datetime="{instant}">{words}</time>')  # noqa: S704 (both escaped)
