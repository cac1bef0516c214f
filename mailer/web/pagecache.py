"""Pages rendered once per process with %%markers%% and filled per request, the way the
newsletter is personalised: the one-click answer has to be cheap."""

from __future__ import annotations

from flask import Flask, current_app, render_template

from mailer.render.personalize import PersonalTemplate, marker

CACHE = "weerbaarnl.pages"


def filled_page(template: str, values: dict[str, str], **fixed) -> str:
    """`template` rendered with `fixed` (cached per Flask app), personal `values` filled in."""
    page = cached_page(current_app, template, **fixed)
    if page is None:
        html = render_template(template, **fixed, **{k: marker(k) for k in values})
        page = current_app.extensions[CACHE][_key(template, fixed)] = \
            PersonalTemplate.parse(html, escape_html=True)
    return page.fill(values)


def cached_page(web: Flask, template: str, **fixed) -> PersonalTemplate | None:
    """The page `filled_page` rendered for these fixed values, if it has been yet."""
    return web.extensions.setdefault(CACHE, {}).get(_key(template, fixed))


def _key(template: str, fixed: dict) -> tuple:
    return (template, tuple(sorted(fixed.items())))
