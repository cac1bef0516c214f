"""The `mailer` command: thin click commands over the services in the package."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import click
from sqlalchemy.exc import OperationalError, ProgrammingError

from mailer.app import App
from mailer.errors import MailerError
from mailer.settings import Settings, load_settings
from mailer.store.db import current_revisions, driver_reason, head_revisions


@dataclass
class CliState:
    """What every command shares: how to load settings, and the App once built."""

    config: Path | None
    overrides: dict = field(default_factory=dict)
    _app: App | None = None

    def settings(self) -> Settings:
        return load_settings(self.config, **self.overrides)

    def app(self) -> App:
        if self._app is None:
            self._app = App(self.settings())
        return self._app


class MailerGroup(click.Group):
    """A click group that turns our errors into one clear line and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MailerError as exc:
            raise click.ClickException(str(exc)) from None
        except (OperationalError, ProgrammingError) as exc:
            # A database that cannot be reached or has no schema yet is the operator's to
            # fix, not a bug: say so in one line (the traceback is in the debug log).
            logging.getLogger(__name__).debug("database error", exc_info=True)
            raise click.ClickException(database_problem(ctx.obj, exc)) from None
        except OSError as exc:
            if exc.filename is None:  # not about a file or folder: a bug or a network fault
                raise
            # A folder that does not exist or may not be written (--out, outbox_dir, ...).
            logging.getLogger(__name__).debug("file error", exc_info=True)
            raise click.ClickException(f"{exc.filename}: {exc.strerror or exc}") from None


def database_problem(state: CliState | None, exc: OperationalError | ProgrammingError) -> str:
    """One line on why the database failed: a schema behind the code, or the driver's reason."""
    reason = driver_reason(exc)
    app = state._app if state else None
    if app is None:
        return f"database: {reason}"
    try:
        behind = set(current_revisions(app.engine)) != set(head_revisions(app.engine))
    except Exception:  # noqa: BLE001 - unreachable: the driver's reason says why
        behind = False
    if behind:
        return "the database schema is not up to date: run `mailer init` first"
    return f"database {app.engine.url.render_as_string(hide_password=True)}: {reason}"


@click.group(cls=MailerGroup)
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False),
              envvar="MAILER_CONFIG", help="Path to mailer.toml (default: searched upwards).")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, config: Path | None, verbose: int) -> None:
    """WeerbaarNL mailer: compose, preview and send the newsletter of Platform JEP."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = CliState(config)


pass_state = click.make_pass_decorator(CliState)


def register_commands() -> None:
    """Import the command modules; each adds its commands to `main`."""
    from mailer.cli import (  # noqa: F401
        content,
        db,
        demo,
        issue,
        issues,
        jobs,
        retention,
        serve,
        subscribers,
        worker,
    )


register_commands()
