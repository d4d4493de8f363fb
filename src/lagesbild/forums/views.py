"""Pages for managing a forum's members (coordinators and organisation leads) and accepting invitations."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from lagesbild import basemap
from lagesbild.errors import DomainError, InvalidInput
from lagesbild.forums import members
from lagesbild.forums.models import Forum, Membership, Organisation, Role, User, time_zone_names
from lagesbild.forums.services import update_settings
from lagesbild.inputs import loads_json, parse_id, parse_int
from lagesbild.pages import member_who

# The members page's forms (the last part of their address); the authorization matrix has a row for each.
MEMBER_ACTIONS = ("invite", "role", "suspend", "reactivate", "remove", "organisation")


def _manager(request: HttpRequest, forum: str) -> Membership | HttpResponse:
    return member_who(request, forum, lambda m: m.can_manage_members,
                      _("Only coordinators and organisation leads manage members."))


def members_page(request: HttpRequest, forum: str) -> HttpResponse:
    manager = _manager(request, forum)
    if isinstance(manager, HttpResponse):
        return manager
    return render(request, "forums/members.html", _context(manager))


def _context(manager: Membership, **extra: object) -> dict[str, object]:
    organisations = manager.forum.organisations.all()
    if not manager.is_coordinator:
        organisations = organisations.filter(pk=manager.organisation_id)
    roles = [(value, label) for value, label in Role.choices if value in manager.assignable_roles()]
    return {
        "forum": manager.forum,
        "membership": manager,
        "members": members.manageable_members(manager),
        "invitations": members.pending_invitations(manager),
        "organisations": organisations,
        "roles": roles,
        "kinds": Organisation.Kind.choices,
        "form": {},
        "errors": {},
        **extra,
    }


def _act(request: HttpRequest, forum: str, action: str) -> HttpResponse:
    """Run one change from the members page; show its error on the page, or go back with a confirmation."""
    manager = _manager(request, forum)
    if isinstance(manager, HttpResponse):
        return manager
    data = request.POST
    try:
        if action == "invite":
            invitation = members.invite(manager, email=data.get("email", ""),
                                        organisation_id=_id(data.get("organisation"), "organisation"),
                                        role=data.get("role", ""),
                                        base_url=request.build_absolute_uri("/"))
            messages.success(request, _("An invitation was sent to %(email)s.") % {"email": invitation.email})
        elif action == "role":
            target = members.change_role(manager, _id(data.get("membership"), "membership"), data.get("role", ""))
            messages.success(request, _("%(name)s is now %(role)s.") % {
                "name": target.user.display_name, "role": target.get_role_display().lower()})
        elif action in {"suspend", "reactivate"}:
            target = members.set_active(manager, _id(data.get("membership"), "membership"),
                                        active=action == "reactivate")
            messages.success(request, (_("%(name)s can sign in to the forum again.") if target.is_active
                                       else _("%(name)s no longer has access to the forum.")) % {
                "name": target.user.display_name})
        elif action == "remove":
            members.remove(manager, _id(data.get("membership"), "membership"))
            messages.success(request, _("The member was removed from the forum."))
        elif action == "organisation":
            organisation = members.add_organisation(manager, name=data.get("name", ""), kind=data.get("kind", ""))
            messages.success(request, _("%(name)s is now a member organisation.") % {"name": organisation.name})
    except DomainError as exc:
        status = exc.status if exc.status < 500 else 400
        return render(request, "forums/members.html", _context(
            manager, form=data, errors={exc.field or "__all__": exc.message}, failed=action), status=status)
    return redirect("members", forum=forum)


def _id(value: str | None, field: str) -> int:
    return parse_id(value, field) or 0


@require_POST
def member_action(request: HttpRequest, forum: str, action: str) -> HttpResponse:
    if action not in MEMBER_ACTIONS:
        return render(request, "404.html", status=404)
    return _act(request, forum, action)


def settings_page(request: HttpRequest, forum: str) -> HttpResponse:
    """The forum's settings, for coordinators: name, area, two-factor, personal data, retention."""
    manager = member_who(request, forum, lambda m: m.can_administer_forum,
                         _("Only the forum's coordinators can change its settings."))
    if isinstance(manager, HttpResponse):
        return manager
    context: dict[str, object] = {"forum": manager.forum, "membership": manager, "errors": {},
                                  "retention_actions": Forum.Retention.choices, "cadences": Forum.Cadence.choices,
                                  "time_zones": sorted(time_zone_names()),
                                  "map_config": {"basemap": basemap.client_config(),
                                                 "workerUrl": settings.STATIC_URL
                                                 + "vendor/maplibre-gl/maplibre-gl-csp-worker.js",
                                                 "area": manager.forum.area},
                                  "area_strings": {
                                      "corners": _("%(count)s corners. Click the next one, or choose Done."),
                                      "tooFew": _("An area needs at least three corners."),
                                      "ready": _("The new area is drawn. Save to keep it."),
                                  }}
    if request.method != "POST":
        return render(request, "forums/settings.html", context)
    data = request.POST
    try:
        changes: dict[str, Any] = {
            "name": data.get("name", ""),
            "timezone": data.get("timezone", manager.forum.timezone),
            "meeting_cadence": data.get("meeting_cadence", manager.forum.meeting_cadence),
            "reminder_days": parse_int(data.get("reminder_days"), "reminder_days", maximum=60)
            if data.get("reminder_days", "") != "" else manager.forum.reminder_days,
            "require_two_factor": data.get("require_two_factor") == "on",
            "block_personal_data": data.get("block_personal_data") == "on",
            "retention_months": parse_int(data.get("retention_months"), "retention_months", maximum=240),
            "retention_action": data.get("retention_action", Forum.Retention.ANONYMISE),
        }
        area = _uploaded_area(request)
        if area is not None:
            changes["area"] = area
        update_settings(manager, changes)
    except DomainError as exc:
        return render(request, "forums/settings.html", {**context, "errors": {exc.field or "__all__": exc.message},
                                                         "form": data}, status=exc.status)
    messages.success(request, _("The forum's settings were saved."))
    return redirect("forum-settings", forum=forum)


def _uploaded_area(request: HttpRequest) -> dict[str, Any] | None:
    """The area from an uploaded GeoJSON file (a Polygon, a Feature or a FeatureCollection's first feature),
    or else as drawn on the map (the page's script puts the polygon in the field `area_drawn`)."""
    upload = request.FILES.get("area")
    drawn = request.POST.get("area_drawn", "").strip()
    if upload is None and not drawn:
        return None
    if upload is not None and upload.size and upload.size > 2 * 2**20:
        raise InvalidInput(_("The area file is too large (at most 2 MB)."), field="area")
    data = loads_json(upload.read() if upload is not None else drawn, "area", _("The area file is not GeoJSON."))
    if isinstance(data, dict) and data.get("type") == "FeatureCollection" and data.get("features"):
        data = data["features"][0]
    if isinstance(data, dict) and data.get("type") == "Feature":
        data = data.get("geometry")
    if not isinstance(data, dict):
        raise InvalidInput(_("The area file is not GeoJSON."), field="area")
    return data


def accept_invitation(request: HttpRequest, key: str) -> HttpResponse:
    """The page an invitation link opens: join with the signed-in account, or create one."""
    try:
        invitation = members.invitation_for(key)
    except DomainError as exc:
        return render(request, "forums/invitation.html", {"problem": exc.message}, status=exc.status)
    user = request.user if request.user.is_authenticated else None
    context: dict[str, object] = {"invitation": invitation, "form": {}, "errors": {}}
    if user is not None and user.email.lower() != invitation.email.lower():  # type: ignore[union-attr]
        context["problem"] = _("This invitation is for %(email)s, but you are signed in as %(you)s. Sign out and "
                               "open the link again.") % {"email": invitation.email, "you": user.email}  # type: ignore[union-attr]
        return render(request, "forums/invitation.html", context, status=403)
    has_account = user is not None or User.objects.filter(email__iexact=invitation.email).exists()
    context["has_account"] = has_account
    if request.method != "POST":
        return render(request, "forums/invitation.html", context)
    data = request.POST
    try:
        if user is not None:
            membership = members.accept_invitation(key, user=user)  # type: ignore[arg-type]
        elif has_account:
            return redirect(f"/konto/login/?next={request.path}")
        else:
            password = data.get("password1", "")
            if password != data.get("password2", ""):
                raise ValidationError(_("The two passwords are not the same."))
            validate_password(password, User(email=invitation.email, first_name=data.get("first_name", "")))
            membership = members.accept_invitation(key, first_name=data.get("first_name", ""),
                                                   last_name=data.get("last_name", ""), password=password)
            login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
    except ValidationError as exc:
        return render(request, "forums/invitation.html",
                      {**context, "form": data, "errors": {"password1": " ".join(exc.messages)}}, status=400)
    except DomainError as exc:
        return render(request, "forums/invitation.html", {**context, "problem": exc.message}, status=exc.status)
    messages.success(request, _("Welcome to %(forum)s.") % {"forum": membership.forum.name})
    return redirect("map", forum=membership.forum.slug)
