"""Error pages: a clear page and the right status, never a bare 500."""


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
