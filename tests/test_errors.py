"""Error pages: a clear page and the right status, never a bare 500."""

import io


def test_404_page(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "Not Found" in page and "Back to the catalog" in page
    assert "There is no such page." in page and "If you entered the URL manually" not in page
    assert "There is no such product." in client.get("/products/999").get_data(as_text=True)


def test_405_keeps_the_allow_header(client):
    response = client.get("/cart/add")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert "Method Not Allowed" in response.get_data(as_text=True)
    assert "go back to the page the form was on" in response.get_data(as_text=True)


def test_400_page_for_a_form_without_csrf(client):
    response = client.post("/cart/update", data={"product_id": 1, "quantity": 1})
    assert response.status_code == 400
    assert "Form expired" in response.get_data(as_text=True)


def test_413_for_an_oversized_body(client):
    response = client.post_form("/cart/add", {"product_id": 1, "quantity": "1" * 100_000})
    assert response.status_code == 413


def test_500_page_says_nothing_was_charged(app, client):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/boom")
    def boom():
        raise RuntimeError("boom")

    response = client.get("/boom")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "Nothing was charged" in page
    assert "boom" not in page


def test_a_form_sent_as_json_or_with_file_parts_is_refused_not_a_500(client):
    # A page's form fields are read from the form body only: a JSON body's numbers and
    # lists, or an upload, never reach a field's parsing.
    token = client.csrf_token()
    headers = {"X-CSRFToken": token}
    as_json = client.post("/cart/add", json={"product_id": 1, "quantity": 1}, headers=headers)
    assert as_json.status_code == 422
    login = client.post("/auth/login", json={"email": 1, "password": "x"}, headers=headers)
    assert login.status_code in (400, 422)
    deep = client.post(
        "/cart/add", data="[" * 5_000, content_type="application/json", headers=headers
    )
    assert deep.status_code == 422
    upload = client.post(
        "/cart/add",
        data={"csrf_token": token, "product_id": (io.BytesIO(b"1"), "a"), "quantity": "1"},
        content_type="multipart/form-data",
    )
    assert upload.status_code == 422
