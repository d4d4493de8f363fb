from django.contrib import admin

from lagesbild.deviations.models import Category, Deviation


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["key", "name_sv", "name_en", "parent", "forum", "color"]
    list_filter = ["forum"]


@admin.register(Deviation)
class DeviationAdmin(admin.ModelAdmin):
    """For operators looking into a problem; changes belong in the app, where they are audited."""

    list_display = ["id", "forum", "category", "observed_at", "organisation", "status", "visibility"]
    list_filter = ["forum", "status", "visibility"]
    readonly_fields = [f.name for f in Deviation._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False
