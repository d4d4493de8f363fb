import logging
from typing import Any

from django.core.mail import get_connection
from django.core.management.base import BaseCommand

from lagesbild.alerts.services import digest_sent, digests

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Send the daily e-mail of saved views with daily alerts. Run once a day, from cron or a systemd timer."

    def handle(self, *args: Any, **options: Any) -> None:
        sent = failed = 0
        with get_connection() as connection:
            for digest in digests():
                if digest.message is not None:
                    try:
                        connection.send_messages([digest.message])
                    except OSError:  # the mail server refused: tomorrow's run tells of these alerts again
                        log.exception("Daily alert e-mail for saved view %s not sent", digest.view.pk)
                        failed += 1
                        continue
                    sent += 1
                digest_sent(digest)
        self.stdout.write(f"Sent {sent} daily alert e-mails" + (f", {failed} failed." if failed else "."))
