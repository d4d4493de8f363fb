"""Background tasks for deviations, run by `lagesbild db_worker` from the queue in the database."""

from __future__ import annotations

from django_tasks import task

from lagesbild.deviations import services
from lagesbild.forums.models import Forum


@task()
def refresh_local_times(forum_id: int) -> int:
    """After a forum's time zone changed: its deviations' local weekday, hour and month, worked out again."""
    forum = Forum.objects.filter(pk=forum_id).first()
    return services.refresh_local_times(forum) if forum is not None else 0
