"""Open redirects: every `next` a page takes stays on this site (SPEC section 7)."""

from urllib.parse import urlsplit

import pytest

from tests.factories import PASSWORD, last_code_sent_to, make_user, quick_password, set_rules

PAYLOADS = [
    "//evil.com",
    "/\\evil.com",
    "\\\\\\evil.com",
    "https:evil.com",
    "https://evil.com/",
    "%2F%2Fevil.com",
    "/%09/evil.com",
    "/%2F/evil.com",
    "/%5Cevil.com",
    "/\t/evil.com",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "///evil.com",
    "\\/evil.com",
    " //evil.com",
    "/\x00//evil.com",
]


def stays_here(location: str) -> bool:
    parts = urlsplit(location)
    return (
        not parts.scheme
        and not parts.netloc
        and location.startswith("/")
        and (not location.startswith("//") and "\\" not in location and location.isprintable())
    )


@pytest.mark.parametrize("payload", PAYLOADS, ids=repr)
def test_sign_in_with_a_password_never_leaves_the_site(client, payload):
    set_rules(login_mode="never")
    user = quick_password(make_user())
    response = client.post_form(
        "/auth/login", {"email": user.email, "password": PASSWORD}, query_string={"next": payload}
    )
    assert response.status_code in (302, 400)
    if response.status_code == 302:
        assert stays_here(response.headers["Location"]), response.headers["Location"]
        assert "evil" not in response.headers["Location"]


@pytest.mark.parametrize("payload", PAYLOADS, ids=repr)
def test_sign_in_with_a_code_never_leaves_the_site(client, payload):
    set_rules(login_mode="always")
    user = quick_password(make_user())
    started = client.post_form(
        "/auth/login", {"email": user.email, "password": PASSWORD}, query_string={"next": payload}
    )
    if started.status_code == 400:  # a control character: refused before anything
        return
    done = client.post_form("/auth/login/verify", {"code": last_code_sent_to(user.phone)})
    assert done.status_code == 302
    assert stays_here(done.headers["Location"]) and "evil" not in done.headers["Location"]


@pytest.mark.parametrize("payload", PAYLOADS, ids=repr)
def test_registering_and_confirming_a_number_never_leave_the_site(client, payload):
    response = client.post_form(
        "/auth/register",
        {"email": "new@example.com", "phone": "07700 900555", "password": "long enough pw"},
        query_string={"next": payload},
    )
    if response.status_code == 400:
        return
    assert "evil" not in response.headers["Location"]
    user = make_user(verified=False)
    client.sign_in_as(user)
    client.post_form("/auth/verify-phone/resend")
    code = last_code_sent_to(user.phone)
    done = client.post_form("/auth/verify-phone", {"code": code}, query_string={"next": payload})
    assert done.status_code == 302
    assert stays_here(done.headers["Location"]) and "evil" not in done.headers["Location"]
