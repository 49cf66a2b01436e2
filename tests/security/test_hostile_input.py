"""Hostile ids and bytes to every route (defect 9): a 4xx that says why, never a 500.

`GET /products/9223372036854775808` was a 500 (integer overflow in the driver). Every path
argument of every route gets ids past any integer column, negative and huge numbers, NUL
and other control characters, and overlong text; every query string, form and JSON body
gets a NUL: the answer is a 404 (no such route) or a 400, and nothing changes.
"""

import io

import pytest
from werkzeug.routing import IntegerConverter

from shop.web.input_guard import MAX_PATH_PART, MESSAGE
from tests.security.world import is_api, methods_of, routes, snapshot, url_of

HOSTILE_PATH_VALUES = [
    "9223372036854775808",
    "2147483648",
    "-1",
    "99999999999999999999999999",
    "\x00",
    "ab\x00cd",
    "ab\x01cd",
    "line\nbreak",
    "\x7f",
    "x" * 1000,
]
HOSTILE_TEXT = ["a\x00b", "\x00", "a\x01b", "\x1b[31m", "a\x7fb", "\x85"]


def send(client, method: str, url: str, **kwargs):
    response = client.open(url, method=method, **kwargs)
    response.close()
    return response


def every_route_and_method(app):
    for rule in routes(app):
        if rule.endpoint == "static":
            continue
        for method in methods_of(rule):
            yield rule, method


def test_hostile_path_values_match_no_route(app, client, world):
    client.sign_in_as(world.owner)
    values = world.path_values()
    before = snapshot()
    tried = 0
    for rule, method in every_route_and_method(app):
        for argument in rule.arguments:
            for hostile in HOSTILE_PATH_VALUES:
                response = send(client, method, url_of(rule, values, **{argument: hostile}))
                tried += 1
                status = response.status_code
                assert 400 <= status < 500, (method, rule.rule, hostile, status)
                numeric_id = isinstance(rule._converters[argument], IntegerConverter)
                if numeric_id or not hostile.isprintable() or len(hostile) > MAX_PATH_PART:
                    assert status in (404, 405), (method, rule.rule, hostile)
    assert tried > 100
    assert snapshot() == before


def test_the_overflowing_product_id_of_the_report_is_a_404(client):
    response = client.get("/products/9223372036854775808")
    assert response.status_code == 404
    assert "There is no such" in response.get_data(as_text=True) or "Not Found" in (
        response.get_data(as_text=True)
    )


@pytest.mark.parametrize("hostile", HOSTILE_TEXT, ids=repr)
def test_control_characters_in_a_query_form_or_json_body_are_a_400(app, client, world, hostile):
    client.sign_in_as(world.owner)
    values = world.path_values()
    before = snapshot()
    for rule, method in every_route_and_method(app):
        url = url_of(rule, values)
        attempts = [{"query_string": {"q": hostile}}]
        if method != "GET":
            attempts += [
                {"data": {"csrf_token": client.csrf_token(), "field": hostile}},
                {"data": {f"na{hostile}me": "x", "csrf_token": client.csrf_token()}},
            ]
            if is_api(rule):
                attempts.append({"json": {"name": hostile, "nested": [{"deep": hostile}]}})
        for attempt in attempts:
            response = send(client, method, url, **attempt)
            if rule.endpoint.startswith("webhooks."):  # signed: their own parser refuses
                assert response.status_code in (400, 401), (method, rule.rule)
                continue
            if "json" in attempt:  # the API's schemas, field by field (or its CSRF check)
                assert response.status_code in (400, 403, 422), (method, rule.rule)
                continue
            assert response.status_code == 400, (method, rule.rule, attempt)
            body = response.get_data(as_text=True)
            assert "control character" in body, (method, rule.rule)
    assert snapshot() == before
    assert "NUL" in MESSAGE


def test_tabs_and_line_breaks_are_still_welcome(client, world):
    client.sign_in_as(world.shopper)
    response = client.post_form(
        "/account/phone", {"phone": "+44 7700\t900555\r\n", "password": "wrong password"}
    )
    assert response.status_code == 422  # judged on its merits, not refused as hostile


def test_a_chunked_form_body_is_read_and_refused_too(client):
    """A form sent without a length (`Transfer-Encoding: chunked`) is looked at like any
    other: the guard does not take a missing Content-Length for an empty body."""
    response = client.post(
        "/auth/login",
        input_stream=io.BytesIO(b"email=a%00b%40example.com&password=x"),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Transfer-Encoding": "Chunked",
        },
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 400
    assert "control character" in response.get_data(as_text=True)
