"""Input that no page or API call of the shop has a use for, refused before any view runs.

- Path parts: an id is a whole number up to 2**31 - 1 (what every database's integer column
  holds), and any other part is 1 to 200 characters with no control character. Anything
  else matches no route: a 404, never an integer overflow deep in the database driver.
- Query strings and form fields: no NUL or other control character (tab and line breaks
  excepted), which PostgreSQL would refuse in a text column and no person types. Such a
  request is a 400 that says why.

JSON bodies are the API's: its schemas refuse unknown fields and control characters field by
field, with a 422 naming them (shop.api.schemas). Signed webhooks are left to their own
stricter parser (shop.blueprints.webhooks). Both decode with `one_value_per_key`: a key sent
twice is refused, as a repeated form field is, rather than settled silently by keeping the
last value as Python's decoder does.
"""

from typing import Any

from flask import Flask, abort, request
from werkzeug.routing import IntegerConverter, Map, UnicodeConverter

MAX_ID = 2**31 - 1
MAX_PATH_PART = 200
# C0 controls but tab, line feed and carriage return; DEL; C1 controls.
_CONTROL = frozenset(chr(code) for code in [*range(0x20), 0x7F, *range(0x80, 0xA0)]) - {
    "\t",
    "\n",
    "\r",
}
UNCHECKED_BLUEPRINTS = frozenset({"webhooks"})
MESSAGE = "The request contains a control character (such as NUL), which no field accepts."


class BoundedInt(IntegerConverter):
    """`<int:...>`: at most MAX_ID unless the route says otherwise."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


class PathText(UnicodeConverter):
    """`<...>` and `<string:...>`: 1 to 200 characters, none of them a control character."""

    def __init__(self, map: Map, minlength: int = 1, maxlength: int | None = None, length=None):
        super().__init__(map, minlength, maxlength or MAX_PATH_PART, length)
        self.regex = self.regex.replace("[^/]", r"[^/\x00-\x1f\x7f-\x9f]", 1)


def register_converters(app: Flask) -> None:
    """Before any route is added: its converters are looked up as it is."""
    app.url_map.converters.update(default=PathText, string=PathText, int=BoundedInt)


def has_control_characters() -> bool:
    texts: list[str] = []
    # A request with no query string and no body has nothing to look at: the cached
    # catalog's GET / is answered without parsing either (SPEC section 8's throughput).
    # Read from the WSGI environ: werkzeug's header and length properties cost more than the
    # rest of this check on such a request.
    environ = request.environ
    sources = []
    if environ.get("QUERY_STRING"):
        sources.append(request.args)
    if (
        environ.get("CONTENT_LENGTH", "0") not in ("", "0")
        or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    ):
        sources.append(request.form)
    for source in sources:
        for name, values in source.lists():
            texts.append(name)
            texts.extend(values)
    return any(not _CONTROL.isdisjoint(text) for text in texts)


class RepeatedKey(ValueError):
    """A JSON object names one key twice: which value was meant cannot be known."""


def one_value_per_key(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`json.loads`'s `object_pairs_hook`: the object, or RepeatedKey naming the keys."""
    names = [name for name, _ in pairs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise RepeatedKey(f"A JSON key was sent more than once: {', '.join(repeated)}.")
    return dict(pairs)


def register(app: Flask) -> None:
    @app.before_request
    def refuse_control_characters() -> None:
        if request.blueprint in UNCHECKED_BLUEPRINTS:
            return
        if has_control_characters():
            abort(400, description=MESSAGE)
