"""What the scheduler tells the editors about a failing job: once when it starts failing,
once more whenever something new fails while it still fails, and once when it works
again; never for the same failure on every (hourly) run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailer.jobs import JobSpec
from mailer.store.jobs import RunStatus
from mailer.tasks import TaskResult, moment_text

UNTIL_NEWS = ("Zolang dezelfde fout blijft, krijg je hier geen nieuwe mail over; wel als er "
              "iets anders misgaat en zodra de taak weer lukt. Details staan in het log van "
              "de planner.")


@dataclass(frozen=True)
class EditorNote:
    """A note for the editors: subject and lines (Dutch)."""

    subject: str
    lines: list[str]


@dataclass(frozen=True)
class FailureNews:
    """The note a run's outcome calls for, if any, and what the editors then know is
    failing (None: nothing, the job works)."""

    note: EditorNote | None
    known: list[str] | None


def failure_news(spec: JobSpec, fire_time: datetime, result: TaskResult,
                 before: RunStatus | None, known: list[str] | None) -> FailureNews:
    """Decide what to tell the editors after a run, given what they were told before."""
    if result.status is RunStatus.FAILED:
        return _failed(spec, fire_time, result, before, known)
    if result.status is RunStatus.INTERRUPTED:  # stopped: says nothing about the failure
        return FailureNews(None, known)
    if known or before is RunStatus.FAILED:
        return FailureNews(recovered_note(spec, fire_time), None)
    return FailureNews(None, None)


def _failed(spec: JobSpec, fire_time: datetime, result: TaskResult,
            before: RunStatus | None, known: list[str] | None) -> FailureNews:
    keys = result.failure_keys()
    if known is None and before is RunStatus.FAILED:
        known = keys  # failing since before this was kept: the editors were told then
    if not known:
        return FailureNews(failed_note(spec, fire_time, result), keys)
    new = [key for key in keys if key not in known]
    if not new:
        return FailureNews(None, known)
    # What they were told stays known until the job works: a source that flaps while
    # another stays broken is no news each time it comes back.
    return FailureNews(new_failure_note(spec, fire_time, result, new),
                       sorted(set(known) | set(keys)))


def _explained(result: TaskResult) -> list[str]:
    return list(result.note or [f"Foutmelding: {result.detail}"])


def failed_note(spec: JobSpec, fire_time: datetime, result: TaskResult) -> EditorNote:
    """The note on a job that has just started failing."""
    return EditorNote(f"Planner: taak {spec.id} is mislukt", [
        f"De taak {spec.id} ({spec.task}) van {moment_text(fire_time)} is mislukt.",
        *_explained(result), UNTIL_NEWS])


def new_failure_note(spec: JobSpec, fire_time: datetime, result: TaskResult,
                     new: list[str]) -> EditorNote:
    """The note on a failing job that now also fails for something else."""
    lines = [f"De taak {spec.id} ({spec.task}) van {moment_text(fire_time)} is opnieuw "
             "mislukt, en nu ook om een andere reden dan in de vorige mail.",
             *_explained(result)]
    if result.failures:  # names, not a whole error message already quoted above
        lines.append(f"Nieuw sinds de vorige mail: {', '.join(new)}")
    return EditorNote(f"Planner: taak {spec.id} mislukt nu ook om een andere reden",
                      [*lines, UNTIL_NEWS])


def recovered_note(spec: JobSpec, fire_time: datetime) -> EditorNote:
    """The note on a job that works again after failing."""
    return EditorNote(f"Planner: taak {spec.id} lukt weer", [
        f"De taak {spec.id} ({spec.task}) van {moment_text(fire_time)} is weer gelukt; wat "
        "eerder misging, is verholpen.",
        "Je hoeft hier niets meer voor te doen. Mislukt de taak opnieuw, dan krijg je weer "
        "een mail."])
