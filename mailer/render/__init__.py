"""Rendering: Jinja fills MJML, mjml-python compiles it, premailer inlines CSS; plus text."""
