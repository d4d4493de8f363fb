from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from lagesbild.deviations.models import Category, Deviation
from lagesbild.deviations.services import forum_wide_everywhere


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["key", "name_sv", "name_en", "parent", "forum", "color"]
    list_filter = ["forum"]


@admin.register(Deviation)
class DeviationAdmin(admin.ModelAdmin):
    """For operators looking into a problem; changes belong in the app, where they are audited.

    Operators are not members of any forum, so the admin shows only what every member of a forum may see:
    a deviation restricted to some organisations is not listed here, nor can it be opened by its id.
    """

    list_display = ["id", "forum", "category", "observed_at", "organisation", "status", "visibility"]
    list_filter = ["forum", "status", "visibility"]
    readonly_fields = [f.name for f in Deviation._meta.fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Deviation]:
        return forum_wide_everywhere()

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False
