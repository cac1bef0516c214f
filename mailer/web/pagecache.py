"""Pages rendered once per process with %%markers%% and filled per request, the way the
newsletter is personalised: the one-click answer has to be cheap."""

from __future__ import annotations

from flask import current_app, render_template

from mailer.render.personalize import PersonalTemplate, marker

CACHE = "weerbaarnl.pages"


def filled_page(template: str, values: dict[str, str], **fixed) -> str:
    """`template` rendered with `fixed` (cached per Flask app), personal `values` filled in."""
    cache = current_app.extensions.setdefault(CACHE, {})
    key = (template, tuple(sorted(fixed.items())))
    if key not in cache:
        html = render_template(template, **fixed, **{k: marker(k) for k in values})
        cache[key] = PersonalTemplate.parse(html, escape_html=True)
    return cache[key].fill(values)
