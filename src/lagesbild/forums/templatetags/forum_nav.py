"""The one navigation of a forum's pages, built from what the member may do."""

from __future__ import annotations

from typing import Any

from django import template
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _

from lagesbild.alerts import services as alerts
from lagesbild.forums.models import Membership
from lagesbild.forums.services import memberships_of

register = template.Library()


@register.inclusion_tag("forums/_nav.html", takes_context=True)
def forum_nav(context: dict[str, Any], membership: Membership) -> dict[str, Any]:
    """Karta first, then what every member reads, then the forum's administration by capability."""
    request: HttpRequest = context["request"]
    slug = membership.forum.slug
    current = request.resolver_match.url_name if request.resolver_match else ""
    Entry = tuple[str, str, tuple[str, ...]]  # url name, label, the url names it is current on
    pages: list[Entry] = [("map", _("Map"), ("map",)), ("patterns", _("Patterns"), ("patterns",)),
             ("places", _("Places"), ("places", "place")), ("meetings", _("Meetings"), ("meetings", "meeting",
                                                                                         "protocol")),
             ("actions", _("Actions"), ("actions", "action")),
             ("walks", _("Walks"), ("walks", "walk", "walk-protocol")),
             ("saved-views", _("Saved views"), ("saved-views",))]
    admin: list[Entry] = []
    if membership.can_manage_members:
        admin.append(("members", _("Members"), ("members",)))
    if membership.can_import:
        admin.append(("imports", _("Import"), ("imports", "import")))
    if membership.can_administer_forum:
        admin += [("forum-settings", _("Settings"), ("forum-settings",)),
                  ("categories", _("Categories"), ("categories",)), ("audit-log", _("Audit log"), ("audit-log",))]

    unread = alerts.unread_count(membership)

    def links(entries: list[Entry]) -> list[dict[str, Any]]:
        return [{"key": name, "url": reverse(name, kwargs={"forum": slug}), "label": label, "current": current in names,
                 "count": unread if name == "saved-views" else 0}
                for name, label, names in entries]

    others = [m for m in memberships_of(membership.user) if m.forum_id != membership.forum_id]
    return {"forum": membership.forum, "membership": membership, "pages": links(pages), "admin": links(admin),
            "admin_current": any(current in names for _n, _l, names in admin),
            "other_forums": [(m.forum.name, reverse("map", kwargs={"forum": m.forum.slug})) for m in others]}
