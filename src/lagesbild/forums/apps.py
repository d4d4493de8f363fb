from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ForumsConfig(AppConfig):
    name = "lagesbild.forums"
    label = "forums"
    verbose_name = _("Forums and members")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from lagesbild.forums.adapters import remember_sign_in

        user_logged_in.connect(remember_sign_in, dispatch_uid="lagesbild-remember-sign-in")
