"""The categories page, for coordinators."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from lagesbild.deviations import categories, fields
from lagesbild.deviations.models import CategoryField
from lagesbild.deviations.services import forum_categories, hidden_category_ids
from lagesbild.errors import DomainError
from lagesbild.forums.models import Membership
from lagesbild.inputs import parse_id
from lagesbild.pages import member_who

CATEGORY_PAGE_OPS = ("hide", "show", "add", "field-add", "field-remove")  # the buttons of the categories page


def _coordinator(request: HttpRequest, forum: str) -> Membership | HttpResponse:
    return member_who(request, forum, lambda m: m.can_administer_forum,
                      _("Only the forum's coordinators can change its categories."))


def categories_page(request: HttpRequest, forum: str) -> HttpResponse:
    manager = _coordinator(request, forum)
    if isinstance(manager, HttpResponse):
        return manager
    status = 200
    errors: dict[str, str] = {}
    if request.method == "POST":
        data = request.POST
        try:
            if data.get("op") == "field-add":
                added = fields.add_field(manager, fields.FieldInput(
                    category=data.get("category", ""), label=data.get("label", ""), kind=data.get("kind", ""),
                    choices=data.get("choices", "").splitlines(), required=data.get("required") == "on"))
                messages.success(request, _("The field %(label)s was added to %(category)s.")
                                 % {"label": added.label, "category": added.category.name})
            elif data.get("op") == "field-remove":
                removed = fields.remove_field(manager, parse_id(data.get("field", ""), "field") or 0)
                messages.success(request, _("The field %(label)s was removed.") % {"label": removed.label})
            elif "hide" in data or "show" in data:
                category = categories.set_hidden(manager, data.get("hide") or data.get("show", ""), "hide" in data)
                text = (_("%(name)s is no longer offered when reporting.") if "hide" in data
                        else _("%(name)s is offered when reporting again."))
                messages.success(request, text % {"name": category.name})
            else:
                category = categories.add_category(manager, name_sv=data.get("name_sv", ""),
                                                   name_en=data.get("name_en", ""), parent_key=data.get("parent", ""),
                                                   color=data.get("color", ""))
                messages.success(request, _("The category %(name)s was added.") % {"name": category.name})
            return redirect("categories", forum=forum)
        except DomainError as exc:
            errors = {exc.field or "__all__": exc.message}
            status = exc.status
    all_categories = list(forum_categories(manager.forum))
    hidden = hidden_category_ids(manager.forum)
    groups = [(parent, [c for c in all_categories if c.parent_id == parent.pk])
              for parent in all_categories if parent.parent_id is None]
    return render(request, "deviations/categories.html", {
        "forum": manager.forum, "membership": manager, "groups": groups, "hidden": hidden, "errors": errors,
        "form": request.POST if errors else {}, "own_fields": fields.forum_fields(manager.forum),
        "kinds": CategoryField.Kind.choices}, status=status)
