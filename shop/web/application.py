"""The shop's Flask class: Flask, with the check of whether a hook or view is a coroutine made
once per function instead of on every call.

Flask runs every before-request, after-request and teardown function, and the view, through
`ensure_sync`, which asks `inspect.iscoroutinefunction` each time: on a cached catalog page,
with the extensions' hooks, that was some thirty `inspect` calls per request, a tenth of its
time. A function does not stop or start being a coroutine, so the answer is kept: by the
function itself, or for a bound method by its function (a class-based view binds a new
instance on every request). At most `KEPT` answers, so that nothing made per request can
grow the memo without bound.
"""

from collections.abc import Callable
from inspect import iscoroutinefunction
from typing import Any

from flask import Flask

KEPT = 1024


class ShopFlask(Flask):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._is_coroutine: dict[Any, bool] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        key = getattr(func, "__func__", func)
        try:
            is_coroutine = self._is_coroutine[key]
        except KeyError:
            is_coroutine = iscoroutinefunction(func)
            if len(self._is_coroutine) < KEPT:
                self._is_coroutine[key] = is_coroutine
        except TypeError:  # unhashable: asked each time, as Flask does
            is_coroutine = iscoroutinefunction(func)
        return self.async_to_sync(func) if is_coroutine else func
