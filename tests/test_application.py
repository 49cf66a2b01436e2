"""The shop's Flask class remembers which hooks and views are coroutines (shop.web.application):
the same answers as Flask's, without asking `inspect` on every request, and a memo that class-
based views (a new bound method per request) cannot grow."""

from flask.views import MethodView

from shop.web.application import KEPT, ShopFlask


def test_hooks_and_views_run_as_before_and_are_asked_about_once(app):
    assert isinstance(app, ShopFlask)
    calls = []

    @app.get("/plain")
    def plain() -> str:
        calls.append("view")
        return "plain"

    @app.after_request
    def after(response):
        calls.append("after")
        return response

    client = app.test_client()
    assert client.get("/plain").get_data(as_text=True) == "plain"
    assert client.get("/plain").get_data(as_text=True) == "plain"
    assert calls == ["view", "after", "view", "after"]
    assert app._is_coroutine[plain] is False and app._is_coroutine[after] is False


def test_a_class_based_view_binds_a_new_method_each_request_and_is_kept_once(app):
    class Counter(MethodView):
        def get(self) -> str:
            return "counted"

    app.add_url_rule("/counter", view_func=Counter.as_view("counter"))
    client = app.test_client()
    assert client.get("/counter").get_data(as_text=True) == "counted"
    kept = len(app._is_coroutine)
    for _ in range(5):
        assert client.get("/counter").get_data(as_text=True) == "counted"
    # Each request binds `get` to a new view: kept once, by its function.
    assert len(app._is_coroutine) == kept
    assert Counter.get in app._is_coroutine


def test_the_memo_stops_growing_at_its_bound(app):
    for number in range(KEPT + 10):
        function = eval(f"lambda: {number}")  # noqa: S307 (a new function object each time)
        assert app.ensure_sync(function) is function
    assert len(app._is_coroutine) == KEPT
