from typing import Any

from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.utils.translation import gettext_lazy as _


def _signed_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    from lagesbild.audit.models import AuditEvent
    from lagesbild.audit.services import record_sign_in

    record_sign_in(user, AuditEvent.Action.SIGN_IN)


def _signed_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    from lagesbild.audit.models import AuditEvent
    from lagesbild.audit.services import record_sign_in

    if user is not None:
        record_sign_in(user, AuditEvent.Action.SIGN_OUT)


def _sign_in_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    from lagesbild.audit.models import AuditEvent
    from lagesbild.audit.services import record_sign_in
    from lagesbild.forums.models import User

    email = str(credentials.get("username") or credentials.get("email") or "")[:254]
    record_sign_in(User.objects.filter(email__iexact=email).first(), AuditEvent.Action.SIGN_IN_FAILED, email)


class AuditConfig(AppConfig):
    name = "lagesbild.audit"
    label = "audit"
    verbose_name = _("Audit log")

    def ready(self) -> None:
        user_logged_in.connect(_signed_in, dispatch_uid="lagesbild-audit-sign-in")
        user_logged_out.connect(_signed_out, dispatch_uid="lagesbild-audit-sign-out")
        user_login_failed.connect(_sign_in_failed, dispatch_uid="lagesbild-audit-sign-in-failed")
