"""The `time_tag` filter: a moment as a `<time>` element, escaped, a dash for none."""

from datetime import UTC, date, datetime

from markupsafe import Markup

from shop.web.moments import time_tag


def test_a_moment_is_written_beside_its_instant():
    moment = datetime(2026, 11, 2, 9, 5, 7, tzinfo=UTC)
    assert time_tag(moment) == (
        '<time datetime="2026-11-02T09:05:07+00:00">02 Nov 2026 09:05</time>'
    )
    assert time_tag(moment, "%d %b %H:%M:%S").endswith(">02 Nov 09:05:07</time>")
    assert time_tag(date(2026, 11, 2), "%a %d %b") == (
        '<time datetime="2026-11-02">Mon 02 Nov</time>'
    )
    assert isinstance(time_tag(moment), Markup)


def test_no_moment_is_a_dash_and_words_are_escaped():
    assert time_tag(None) == "—"
    moment = datetime(2026, 11, 2, tzinfo=UTC)
    assert time_tag(moment, "<b>%Y</b>") == (
        '<time datetime="2026-11-02T00:00:00+00:00">&lt;b&gt;2026&lt;/b&gt;</time>'
    )


def test_the_owner_pages_show_moments_with_it(app):
    rendered = app.jinja_env.from_string("{{ moment|time_tag('%Y') }}").render(
        moment=datetime(2026, 11, 2, tzinfo=UTC)
    )
    assert rendered == '<time datetime="2026-11-02T00:00:00+00:00">2026</time>'
