"""`/healthz`: the app is up and its database answers."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from mailer.web import mailer_app

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    """200 when the database answers, else 503."""
    try:
        with mailer_app().engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return jsonify(status="error", database=type(exc).__name__), 503
    return jsonify(status="ok")
