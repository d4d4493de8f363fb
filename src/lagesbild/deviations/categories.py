"""A forum's categories: hide default ones it does not use, add its own (DESIGN.md §5)."""

from __future__ import annotations

from django.db import transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _

from lagesbild.audit import services as audit
from lagesbild.audit.models import AuditEvent
from lagesbild.deviations.models import Category, HiddenCategory
from lagesbild.deviations.services import forum_categories
from lagesbild.errors import InvalidInput, NotFound
from lagesbild.forums.models import Membership
from lagesbild.forums.services import require_coordinator

_COLOUR_DIGITS = set("0123456789abcdefABCDEF")


def _coordinator(manager: Membership) -> None:
    require_coordinator(manager, "categories by a non-coordinator",
                        _("Only the forum's coordinators can change its categories."))


def set_hidden(manager: Membership, category_key: str, hidden: bool) -> Category:
    _coordinator(manager)
    category = forum_categories(manager.forum).filter(key=category_key).first()
    if category is None:
        raise NotFound(_("Unknown category: %(key)s.") % {"key": category_key})
    with transaction.atomic():
        if hidden:
            HiddenCategory.objects.get_or_create(forum=manager.forum, category=category)
        else:
            HiddenCategory.objects.filter(forum=manager.forum, category=category).delete()
        audit.record(manager, AuditEvent.Action.SETTINGS, manager.forum,
                     {"category": category.key, "hidden": hidden})
    return category


def add_category(manager: Membership, *, name_sv: str, name_en: str = "", parent_key: str = "",
                 color: str = "") -> Category:
    """A forum's own category, top-level or under an existing top-level one."""
    _coordinator(manager)
    name_sv, name_en = name_sv.strip(), name_en.strip()
    if not name_sv or len(name_sv) > 80 or len(name_en) > 80:
        raise InvalidInput(_("Give the category a Swedish name (at most 80 characters)."), field="name_sv")
    parent = None
    if parent_key:
        parent = forum_categories(manager.forum).filter(key=parent_key, parent__isnull=True).first()
        if parent is None:
            raise InvalidInput(_("Choose a main category, or none."), field="parent")
    if parent is not None:
        color = parent.color
    elif not (len(color) == 7 and color.startswith("#") and set(color[1:]) <= _COLOUR_DIGITS):
        raise InvalidInput(_("Choose a colour for the new main category."), field="color")
    existing = forum_categories(manager.forum)
    if existing.filter(name_sv__iexact=name_sv, parent=parent).exists():
        raise InvalidInput(_("There is already a category with that name."), field="name_sv")
    base = slugify(name_en or name_sv).replace("-", "_")[:50] or "category"
    key, number = base, 2
    while Category.objects.filter(key=key).exists():
        key, number = f"{base}_{number}", number + 1
    with transaction.atomic():
        category = Category.objects.create(forum=manager.forum, parent=parent, key=key, name_sv=name_sv,
                                           name_en=name_en or name_sv, color=color.lower(),
                                           sort_order=(parent.sort_order + 9) if parent else 500)
        audit.record(manager, AuditEvent.Action.CREATE, category, {"key": key, "name_sv": name_sv})
    return category
