"""Error pages: every 4xx and 5xx gets a page that says what happened and what to do."""

from flask import Blueprint, render_template
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from werkzeug import Response
from werkzeug.exceptions import HTTPException, InternalServerError

from shop.api.problems import is_api_request, problem_response
from shop.web.code_page import duration
from shop.web.ratelimits import retry_after_seconds

bp = Blueprint("errors", __name__)

# In plain words, where Werkzeug's own description would be shown.
PLAIN_WORDS = {
    404: "There is no such page. Check the address, or start again from the catalog.",
    405: "This address answers a form, not a visit: go back to the page the form was on.",
}
CSRF_MESSAGE = (
    "This form has expired or did not come from this site. Go back, reload the page and try again."
)


@bp.app_errorhandler(CSRFError)
def csrf_error(error: CSRFError) -> Response | tuple[str, int]:
    if is_api_request():
        return problem_response(error)
    return render_template("errors.html", code=400, title="Form expired", message=CSRF_MESSAGE), 400


@bp.app_errorhandler(HTTPException)
def http_error(error: HTTPException) -> Response | HTTPException:
    if error.code is None or error.code < 400:
        return error
    if is_api_request():
        return problem_response(error)
    # Werkzeug's own response keeps headers such as Allow (405).
    response = error.get_response()
    title, message = error.name, error.description
    if message == type(error).description:
        message = PLAIN_WORDS.get(error.code, message)
    if isinstance(error, RateLimitExceeded):
        # The limiter's own description is the limit ("20 per 1 minute"): say what it means.
        wait = retry_after_seconds()
        response.headers["Retry-After"] = str(wait)
        title = "Too many attempts"
        message = (
            "Too many attempts from this network in a short time. "
            f"Wait {duration(wait)}, then try again."
        )
    response.set_data(render_template("errors.html", code=error.code, title=title, message=message))
    response.content_type = "text/html; charset=utf-8"
    return response


@bp.app_errorhandler(InternalServerError)
def server_error(error: InternalServerError) -> Response | tuple[str, int]:
    if is_api_request():
        return problem_response(error)
    message = "Something went wrong on our side. Nothing was charged; please try again shortly."
    return render_template("errors.html", code=500, title="Server error", message=message), 500
