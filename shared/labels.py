"""Users' corrections of jobs' answers (the labels table): one per job, the right kind, and for a dog
the breed in its one canonical spelling. The caller owns the session.

`models learn` reads this table for its training data, and gc keeps a labeled job and its image for
as long as the label lives (worker/retention.py).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.breed_names import canonical_breed
from shared.errors import FixedCodeError
from shared.jobs import KINDS, iso
from shared.tables import Label, User, utcnow

DOG = "dog"


class BadBreed(FixedCodeError, ValueError):
    """A breed name that cannot be stored: empty, or too long."""

    code = "bad_breed"


def known_breeds(session: Session) -> list[str]:
    """The breeds already labeled, each in the spelling it was first given (canonical_breed's `known`)."""
    first = (select(Label.breed).where(Label.breed.is_not(None)).group_by(Label.breed)
             .order_by(func.min(Label.created_at), Label.breed))
    return [b for b in session.scalars(first) if b]


def canonical(session: Session, name: str) -> str:
    """`name` as it is stored: an ImageNet breed's common name, a breed labeled before, else tidied."""
    try:
        return canonical_breed(name, known_breeds(session))
    except ValueError as exc:
        raise BadBreed(str(exc)) from None


def put(session: Session, job_id: str, *, kind: str, breed: str | None, user_id: int | None) -> Label:
    """Set the job's label (a new one, or a change of the one it has); a dog needs a breed, the others none."""
    if kind not in KINDS:
        raise ValueError(f"kind is one of {', '.join(KINDS)}")
    name = canonical(session, breed) if kind == DOG and breed is not None else None
    if kind == DOG and name is None:
        raise BadBreed("A dog's label needs its breed.")
    values = {"kind": kind, "breed": name, "user_id": user_id}
    label = get(session, job_id)
    if label is None:
        try:
            with session.begin_nested():  # two first labels of one job at once: the second updates
                label = Label(job_id=job_id, **values)
                session.add(label)
        except IntegrityError:
            label = get(session, job_id)
            if label is None:  # not a race on the one label: the job itself is gone
                raise
    for key, value in values.items():
        setattr(label, key, value)
    label.updated_at = utcnow()
    session.flush()
    return label


def get(session: Session, job_id: str) -> Label | None:
    return session.scalars(select(Label).where(Label.job_id == job_id)).first()


def delete(session: Session, job_id: str) -> bool:
    """Withdraw the job's label; False when it had none."""
    gone = session.execute(sql_delete(Label).where(Label.job_id == job_id)
                           .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
    return bool(gone)


def as_dict(label: Label, labeled_by: str | None) -> dict[str, Any]:
    """A label as the API shows it; `labeled_by` (the user's name) only when someone is known."""
    data: dict[str, Any] = {"kind": label.kind, "breed": label.breed}
    if labeled_by:
        data["labeled_by"] = labeled_by
    data["labeled_at"] = iso(label.updated_at or label.created_at)
    return data


def for_jobs(session: Session, job_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The labels of these jobs, as the API shows them, in one query: job id -> label."""
    if not job_ids:
        return {}
    rows = session.execute(select(Label, User.name).outerjoin(User, User.id == Label.user_id)
                           .where(Label.job_id.in_(job_ids)))
    return {label.job_id: as_dict(label, name) for label, name in rows}
