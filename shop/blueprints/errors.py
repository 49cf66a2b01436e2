"""Error pages: every 4xx and 5xx gets a page that says what happened and what to do."""

from flask import Blueprint, render_template
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from werkzeug import Response
from werkzeug.exceptions import HTTPException, InternalServerError

from shop.api.problems import is_api_request, problem_response
from shop.web.ratelimits import retry_after_seconds

bp = Blueprint("errors", __name__)

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
    if isinstance(error, RateLimitExceeded):
        response.headers["Retry-After"] = str(retry_after_seconds())
    response.set_data(
        render_template("errors.html", code=error.code, title=error.name, message=error.description)
    )
    response.content_type = "text/html; charset=utf-8"
    return response


@bp.app_errorhandler(InternalServerError)
def server_error(error: InternalServerError) -> Response | tuple[str, int]:
    if is_api_request():
        return problem_response(error)
    message = "Something went wrong on our side. Nothing was charged; please try again shortly."
    return render_template("errors.html", code=500, title="Server error", message=message), 500
