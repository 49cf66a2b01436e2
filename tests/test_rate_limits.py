"""HTTP rate limits per client address (Flask-Limiter), shared through a real Redis."""

import shutil

import redis

from shop import create_app
from shop.extensions import db
from tests.conftest import ShopClient, config_for
from tests.factories import make_user, set_rules


def attempt(client, ip="198.51.100.1"):
    return client.post_form(
        "/auth/login",
        {"email": "nobody@example.com", "password": "not the password"},
        environ_base={"REMOTE_ADDR": ip},
    )


def test_sign_in_is_limited_to_10_a_minute_per_address(client, app):
    assert app.config["SIGN_IN_RATE_LIMIT"] == "10 per minute;100 per hour"
    statuses = [attempt(client).status_code for _ in range(11)]
    assert statuses[:10] == [401] * 10
    assert statuses[10] == 429
    limited = attempt(client)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    page = limited.get_data(as_text=True)
    assert "Too many attempts from this network in a short time. Wait " in page
    assert "per 1 minute" not in page
    assert attempt(client, ip="198.51.100.2").status_code == 401


def test_code_entry_is_limited_to_20_a_minute_per_address(client, app):
    assert app.config["CODE_ENTRY_RATE_LIMIT"] == "20 per minute"
    set_rules(login_mode="always")
    user = make_user()
    client.post_form("/auth/login", {"email": user.email, "password": "correct horse battery"})
    statuses = [
        client.post_form("/auth/login/verify", {"code": "000000"}).status_code for _ in range(21)
    ]
    assert 429 not in statuses[:20]
    assert statuses[20] == 429


def test_limits_are_shared_by_every_web_process_through_redis(
    redis_proc, tmp_path, migrated_template
):
    path = tmp_path / "shared.sqlite3"
    shutil.copy(migrated_template, path)
    url = f"redis://{redis_proc.host}:{redis_proc.port}/0"
    apps = [
        create_app({**config_for(path), "REDIS_URL": url, "RATELIMIT_STORAGE_URI": url})
        for _ in range(2)
    ]
    clients = []
    for each in apps:
        each.test_client_class = ShopClient
        clients.append(each.test_client())
    statuses = [attempt(clients[n % 2]).status_code for n in range(11)]
    assert statuses[:10] == [401] * 10
    assert statuses[10] == 429
    # The counts live in Redis, where another machine's web process would find them too.
    keys = redis.Redis(host=redis_proc.host, port=redis_proc.port).keys("*shop*")
    assert keys
    for each in apps:
        with each.app_context():
            db.engine.dispose()
