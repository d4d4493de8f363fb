from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ForumsConfig(AppConfig):
    name = "lagesbild.forums"
    label = "forums"
    verbose_name = _("Forums and members")
