from django.contrib import admin

from lagesbild.interop.models import FaultSystem


@admin.register(FaultSystem)
class FaultSystemAdmin(admin.ModelAdmin):
    """Where operators set up an owner's fault-report system and the categories that go to it."""

    list_display = ("name", "forum", "organisation", "endpoint")
    list_filter = ("forum",)
    # The key is kept for calling the system; the list never shows it.
    fields = ("forum", "organisation", "name", "endpoint", "api_key", "jurisdiction", "services")
