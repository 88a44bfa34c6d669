"""Users' labels on real SQLite and PostgreSQL: one per job, canonical breed names, who and when."""
import pytest

from shared import jobs, labels
from shared.db import session_scope
from shared.tables import Job, Label
from tests.factories import make_job, make_user


def new_job(sessions) -> str:
    with session_scope(sessions) as s:
        return make_job(s, status="succeeded").id


def test_two_spellings_of_one_breed_are_stored_as_one(sessions):
    first, second, third = new_job(sessions), new_job(sessions), new_job(sessions)
    with session_scope(sessions) as s:
        assert labels.put(s, first, kind="dog", breed="shikoku  inu", user_id=None).breed == "Shikoku inu"
    with session_scope(sessions) as s:  # a later user's spelling finds the breed labeled first
        assert labels.put(s, second, kind="dog", breed="Shikoku", user_id=None).breed == "Shikoku inu"
        assert labels.put(s, third, kind="dog", breed="german-shepherd", user_id=None).breed == "German shepherd dog"
    with session_scope(sessions) as s:
        assert labels.known_breeds(s) == ["Shikoku inu", "German shepherd dog"]


def test_a_label_changes_in_place_and_can_be_withdrawn(sessions):
    job_id = new_job(sessions)
    with session_scope(sessions) as s:
        user = make_user(s, "ann")
        first = labels.put(s, job_id, kind="dog", breed="Beagle", user_id=user.id)
        created = first.created_at
    with session_scope(sessions) as s:
        label = labels.put(s, job_id, kind="neither", breed=None, user_id=user.id)
        assert (label.kind, label.breed, jobs.as_utc(label.created_at)) == ("neither", None, jobs.as_utc(created))
        assert s.query(Label).count() == 1
    with session_scope(sessions) as s:
        shown = labels.for_jobs(s, [job_id])[job_id]
        assert shown["kind"] == "neither" and shown["breed"] is None and shown["labeled_by"] == "ann"
        assert shown["labeled_at"].endswith("Z")
    with session_scope(sessions) as s:
        assert labels.delete(s, job_id) is True
    with session_scope(sessions) as s:
        assert labels.delete(s, job_id) is False and labels.for_jobs(s, [job_id]) == {}


def test_a_dog_needs_a_usable_breed(sessions):
    job_id = new_job(sessions)
    with session_scope(sessions) as s:
        for breed in (None, "  -- ", "x" * 101):
            with pytest.raises(labels.BadBreed):
                labels.put(s, job_id, kind="dog", breed=breed, user_id=None)
        assert labels.get(s, job_id) is None


def test_history_filters_by_labeled_and_a_deleted_job_takes_its_label(sessions):
    labeled, plain = new_job(sessions), new_job(sessions)
    with session_scope(sessions) as s:
        labels.put(s, labeled, kind="human", breed=None, user_id=None)

    def found(**flag) -> list[str]:
        with session_scope(sessions) as s:
            rows, _ = jobs.history(s, owner_id=None, page=1, per_page=10, filters=jobs.Filters(**flag))
            return [j.id for j in rows]

    assert found(labeled=True) == [labeled] and found(labeled=False) == [plain]
    with session_scope(sessions) as s:
        s.delete(s.get(Job, labeled))
    with session_scope(sessions) as s:
        assert s.query(Label).count() == 0
