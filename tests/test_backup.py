"""Backup and restore, one command each, round-tripped on the real database (SQLite's file, or PostgreSQL with
pg_dump and pg_restore) and checked by row counts and checksums."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from lagesbild import backup
from lagesbild.deviations import services
from lagesbild.deviations.models import Deviation, DeviationCount, Photo
from tests.conftest import World, image_bytes, make_world

pytestmark = pytest.mark.django_db(transaction=True)


def _media() -> dict[str, bytes]:
    root = Path(settings.MEDIA_ROOT)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _state() -> dict[str, Any]:
    return {
        "deviations": sorted(Deviation.objects.values_list("id", "description", "status", "withdrawn_at")),
        "counts": sorted(DeviationCount.objects.values_list("resolution", "span", "period", "cell", "count")),
        "photos": sorted(Photo.objects.values_list("id", "image")),
        "media": _media(),
    }


def test_a_backup_restores_everything_as_it_was(tmp_path: Path) -> None:
    world: World = make_world()
    kept = services.report_deviation(world.housing_reporter, services.DeviationInput(
        category="graffiti", lon=18.09, lat=59.244, observed_at=timezone.now(),
        description="Tagg på gaveln, ”Åsa” står det"),
        photos=[SimpleUploadedFile("foto.jpg", image_bytes())])
    world.report(world.police_reporter, category="suspected_dealing", visibility="organisation")
    before = _state()
    assert before["media"], "the photo was stored"
    out = tmp_path / "lagesbild.tar"
    call_command("backup", str(out))
    with tarfile.open(out) as archive:
        names = set(archive.getnames())
    assert "manifest.json" in names and any(n.startswith("media/") for n in names)

    # Afterwards: a deviation withdrawn, another reported, a photo's file lost.
    services.withdraw_deviation(world.housing_reporter, kept.pk)
    world.report(world.housing_reporter, category="littering", description="Ny efter säkerhetskopian")
    for path in Path(settings.MEDIA_ROOT).rglob("*.jpg"):
        path.unlink()
    assert _state() != before

    with pytest.raises(CommandError, match="--replace"):
        call_command("restore", str(out))
    call_command("restore", str(out), "--replace")
    assert _state() == before
    # The database as it was before the restore is kept beside the backup.
    assert len(list(tmp_path.glob("*before-restore-*"))) == 1
    if connection.vendor == "postgresql":  # vacuumed, so the restored counts are read from their index alone
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute("SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables "
                           "WHERE relname = 'deviations_deviationcount'")
            assert cursor.fetchone() == (True,)


def test_a_backup_is_never_written_over_an_existing_file(tmp_path: Path) -> None:
    make_world()
    out = tmp_path / "lagesbild.tar"
    out.write_bytes(b"something else")
    with pytest.raises(CommandError, match="exists already"):
        call_command("backup", str(out))
    assert out.read_bytes() == b"something else"


@pytest.mark.parametrize("content", [b"", b"not a tar file at all", b"\x00" * 2048])
def test_a_file_that_is_not_a_backup_is_refused_and_changes_nothing(tmp_path: Path, content: bytes) -> None:
    world = make_world()
    world.report(world.housing_reporter, category="graffiti")
    before = _state()
    bad = tmp_path / "bad.tar"
    bad.write_bytes(content)
    with pytest.raises(CommandError, match="not a Lägesbild backup"):
        call_command("restore", str(bad), "--replace")
    assert _state() == before


def test_a_restore_that_does_not_match_its_manifest_fails_loudly(tmp_path: Path) -> None:
    world = make_world()
    world.report(world.housing_reporter, category="graffiti")
    out = tmp_path / "lagesbild.tar"
    backup.backup(out)
    manifest = backup.read_manifest(out)
    manifest["tables"]["deviations_deviation"]["rows"] += 1  # as if a row had been lost on the way
    with pytest.raises(backup.BackupError, match="deviations_deviation"):
        backup.check(manifest)
    backup.check(backup.read_manifest(out))  # and the true manifest holds


def _rewritten(out: Path, tmp_path: Path, change: Any) -> Path:
    """The backup with its manifest changed by `change` and members added (name -> bytes) as it returns."""
    import io
    import json

    with tarfile.open(out) as archive:
        members = {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}  # type: ignore[union-attr]
    manifest = json.loads(members.pop("manifest.json"))
    extra = change(manifest) or {}
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as archive:
        for name, data in {**members, **extra, "manifest.json": json.dumps(manifest).encode()}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return bad


def test_a_backup_that_names_a_file_outside_the_media_folder_is_refused(tmp_path: Path) -> None:
    world = make_world()
    world.report(world.housing_reporter, category="graffiti")
    out = tmp_path / "lagesbild.tar"
    backup.backup(out)
    before = _state()
    for name in ["../evil.js", "/etc/evil", "photos/../../evil.js", "photos//x"]:
        def smuggle(manifest: dict[str, Any], name: str = name) -> dict[str, bytes]:
            manifest["files"][name] = {"bytes": 4, "sha256": "0" * 64}
            return {f"media/{name}": b"evil"}

        with pytest.raises(CommandError, match="may not be restored"):
            call_command("restore", str(_rewritten(out, tmp_path, smuggle)), "--replace")
    assert not (Path(settings.MEDIA_ROOT).parent / "evil.js").exists()
    assert _state() == before


def test_a_damaged_backup_restores_nothing(tmp_path: Path) -> None:
    world = make_world()
    services.report_deviation(world.housing_reporter, services.DeviationInput(
        category="graffiti", lon=18.09, lat=59.244, observed_at=timezone.now()),
        photos=[SimpleUploadedFile("foto.jpg", image_bytes())])
    out = tmp_path / "lagesbild.tar"
    backup.backup(out)
    world.report(world.housing_reporter, category="littering", description="Efter säkerhetskopian")
    before = _state()

    def damage_a_photo(manifest: dict[str, Any]) -> None:
        name = next(iter(manifest["files"]))
        manifest["files"][name]["sha256"] = "0" * 64

    def lose_a_file(manifest: dict[str, Any]) -> None:
        manifest["files"]["photos/1/lost.jpg"] = {"bytes": 1, "sha256": "0" * 64}

    with pytest.raises(CommandError, match="damaged; nothing was restored"):
        call_command("restore", str(_rewritten(out, tmp_path, damage_a_photo)), "--replace")
    with pytest.raises(CommandError, match="missing from it"):
        call_command("restore", str(_rewritten(out, tmp_path, lose_a_file)), "--replace")
    assert _state() == before


def test_a_backup_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    make_world()
    out = tmp_path / "lagesbild.tar"
    backup.backup(out)
    assert out.stat().st_mode & 0o777 == 0o600
