"""Accounts on the web: register, sign in and sign out."""

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from sqlalchemy.exc import IntegrityError
from werkzeug import Response
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import Email, InputRequired, Length

from shop import accounts
from shop import cart as carts
from shop.blueprints import cart as cart_views
from shop.blueprints.forms import StrictForm
from shop.extensions import db
from shop.models import User

bp = Blueprint("auth", __name__, url_prefix="/auth")

PASSWORD_LENGTH = Length(8, 128, "Use 8 to 128 characters.")


class RegisterForm(StrictForm):
    email = EmailField(
        "E-mail", [InputRequired(), Length(max=254), Email(check_deliverability=False)]
    )
    phone = StringField("Mobile number", [InputRequired(), Length(max=32)])
    password = PasswordField("Password", [InputRequired(), PASSWORD_LENGTH])


class LoginForm(StrictForm):
    email = EmailField("E-mail", [InputRequired(), Length(max=254)])
    password = PasswordField("Password", [InputRequired(), Length(max=128)])
    remember = BooleanField("Keep me signed in on this device (30 days)")


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or not target.isprintable():
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def start_session(user: User, remember: bool) -> None:
    """Sign `user` in on a fresh session, keeping the cart they filled before."""
    anonymous_cart = cart_views.session_contents()
    session.clear()
    login_user(user, remember=remember)
    if anonymous_cart:
        carts.save_user_cart(user, carts.merge(carts.load_user_cart(user), anonymous_cart))
        db.session.commit()


@bp.route("/register", methods=["GET", "POST"])
def register() -> Response | tuple[str, int]:
    form = RegisterForm()
    status = 200
    if form.validate_on_submit():
        try:
            phone = accounts.normalise_phone(
                form.phone.data, current_app.config["SMS_ALLOWED_COUNTRIES"]
            )
            user = accounts.register_user(
                form.email.data,
                phone,
                form.password.data,
                hash_method=current_app.config["PASSWORD_HASH_METHOD"],
            )
            db.session.commit()
        except accounts.InvalidPhone as error:
            form.phone.errors.append(str(error))
        except (accounts.EmailTaken, IntegrityError):
            db.session.rollback()
            form.email.errors.append("An account with this e-mail already exists. Sign in instead.")
        else:
            start_session(user, remember=False)
            flash("Welcome! Your account is ready.", "success")
            return redirect(safe_next(request.args.get("next")) or url_for("catalog.index"))
    if form.errors:
        status = 422
    return render_template("auth/register.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int]:
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        user = accounts.authenticate(
            form.email.data,
            form.password.data,
            hash_method=current_app.config["PASSWORD_HASH_METHOD"],
        )
        if user is not None:
            start_session(user, remember=form.remember.data)
            flash("You are signed in.", "success")
            return redirect(safe_next(request.args.get("next")) or url_for("catalog.index"))
        form.form_errors.append("The e-mail or password is not right.")
        status = 401
    elif form.errors:
        status = 422
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
def logout() -> Response:
    # CSRFProtect has already checked the token: only a form of ours signs anyone out.
    if current_user.is_authenticated:
        logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("catalog.index"))
