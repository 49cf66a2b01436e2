"""Error pages: every 4xx and 5xx gets a page that says what happened and what to do."""

from flask import Blueprint, render_template
from flask_wtf.csrf import CSRFError
from werkzeug import Response
from werkzeug.exceptions import HTTPException, InternalServerError

bp = Blueprint("errors", __name__)

CSRF_MESSAGE = (
    "This form has expired or did not come from this site. Go back, reload the page and try again."
)


@bp.app_errorhandler(CSRFError)
def csrf_error(error: CSRFError) -> tuple[str, int]:
    return render_template("errors.html", code=400, title="Form expired", message=CSRF_MESSAGE), 400


@bp.app_errorhandler(HTTPException)
def http_error(error: HTTPException) -> Response | HTTPException:
    if error.code is None or error.code < 400:
        return error
    # Werkzeug's own response keeps headers such as Allow (405) and Retry-After (429).
    response = error.get_response()
    response.set_data(
        render_template("errors.html", code=error.code, title=error.name, message=error.description)
    )
    response.content_type = "text/html; charset=utf-8"
    return response


@bp.app_errorhandler(InternalServerError)
def server_error(error: InternalServerError) -> tuple[str, int]:
    message = "Something went wrong on our side. Nothing was charged; please try again shortly."
    return render_template("errors.html", code=500, title="Server error", message=message), 500
