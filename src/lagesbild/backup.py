"""Backup and restore, one command each (`lagesbild backup FILE`, `lagesbild restore FILE`).

A backup is one tar file holding:
- the database, as a consistent snapshot: SQLite's online backup API (the app keeps running), or `pg_dump`'s
  custom format taken inside a transaction whose snapshot the checksums below are read from too;
- the uploaded files (photos, imports) under `media/`;
- `manifest.json`: each table's row count and checksum, and each file's size and SHA-256.

A restore puts the database back in one transaction (PostgreSQL) or through the backup API (SQLite), puts the
files back, then reads every table again and compares it with the manifest. Any difference fails loudly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection, connections

from lagesbild import data_version, spatial_index

MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite3"
POSTGRES_FILE = "database.pgdump"
FORMAT = 1


class BackupError(Exception):
    """Something an operator must hear about, in words they can act on."""


def _tables() -> list[tuple[str, str]]:
    """(table, primary key column) of every table Lägesbild keeps, in a fixed order."""
    tables = {m._meta.db_table: m._meta.pk.column for m in apps.get_models(include_auto_created=True)}
    tables["django_migrations"] = "id"
    tables[data_version.TABLE] = "id"
    return sorted(tables.items())


def _text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def fingerprints(cursor: Any, existing: set[str], open_cursor: Any = None) -> dict[str, dict[str, Any]]:
    """Each table's row count and a SHA-256 of its rows in primary-key order. `open_cursor` makes a cursor per
    table that streams its rows (PostgreSQL's server-side cursors), so a table of millions is never held whole."""
    result = {}
    for table, pk in _tables():
        if table not in existing:
            continue
        digest = hashlib.sha256()
        rows = 0
        if open_cursor is not None:
            cursor = open_cursor(table)
        cursor.execute(f'SELECT * FROM "{table}" ORDER BY "{pk}"')
        while batch := cursor.fetchmany(5000):
            for row in batch:
                digest.update("\t".join(_text(v) for v in row).encode())
                digest.update(b"\n")
            rows += len(batch)
        result[table] = {"rows": rows, "sha256": digest.hexdigest()}
    return result


def _sqlite_fingerprints(path: Path) -> dict[str, dict[str, Any]]:
    """Read with Python's own sqlite3 (no Django converters), so a backup and a restored file read alike."""
    database = sqlite3.connect(path)
    try:
        cursor = database.cursor()
        existing = {r[0] for r in cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return fingerprints(cursor, existing)
    finally:
        database.close()


def _media_files() -> Iterator[Path]:
    root = Path(settings.MEDIA_ROOT)
    if root.exists():
        yield from sorted(p for p in root.rglob("*") if p.is_file())


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Summary:
    tables: int
    rows: int
    files: int
    bytes: int
    kept: Path | None = None  # where a restore kept the database as it was


def _sqlite_path() -> Path:
    return Path(connection.settings_dict["NAME"])


def _postgres_environment() -> tuple[list[str], dict[str, str]]:
    """Connection arguments and environment for PostgreSQL's own tools: the same server, database and role as the
    app's own connection (an empty host is the local socket, as for the app)."""
    db = connection.settings_dict
    env = {**os.environ}
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    for option, variable in (("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT")):
        if db.get("OPTIONS", {}).get(option):
            env[variable] = str(db["OPTIONS"][option])
    args = ["-d", str(db["NAME"])]
    if db.get("HOST"):
        args += ["-h", str(db["HOST"])]
    if db.get("PORT"):
        args += ["-p", str(db["PORT"])]
    if db.get("USER"):
        args += ["-U", str(db["USER"])]
    return args, env


def describe_database() -> str:
    """Where the backup comes from or goes to, in words for the operator."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"SQLite file {db['NAME']}"
    return f"PostgreSQL database {db['NAME']} on {db.get('HOST') or 'the local socket'}"


def _tool(name: str) -> str:
    """PostgreSQL's tool of the server's major version (pg_dump refuses a newer server than itself)."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        row = cursor.fetchone()
    major = int(row[0]) // 10000 if row else 15
    for candidate in (Path(f"/usr/lib/postgresql/{major}/bin/{name}"), shutil.which(name)):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise BackupError(f"{name} is not installed. On Debian: apt-get install postgresql-client-{major}.")


def backup(destination: Path) -> Summary:
    """Write a backup of the database and the uploaded files to `destination` (a tar file)."""
    destination = destination.resolve()
    if destination.exists():
        raise BackupError(f"{destination} exists already; choose a new file name.")
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=destination.parent, prefix=".lagesbild-backup-") as work:
        folder = Path(work)
        manifest: dict[str, Any] = {"format": FORMAT, "database": connection.vendor,
                                    "created": dt.datetime.now(dt.UTC).isoformat()}
        if connection.vendor == "sqlite":
            copy = folder / SQLITE_FILE
            source = sqlite3.connect(_sqlite_path())
            target = sqlite3.connect(copy)
            try:
                source.backup(target)  # a consistent snapshot, while the app goes on writing
            finally:
                target.close()
                source.close()
            manifest["tables"] = _sqlite_fingerprints(copy)
            database_file = SQLITE_FILE
        else:
            manifest["tables"] = _postgres_dump(folder / POSTGRES_FILE)
            database_file = POSTGRES_FILE
        files: dict[str, Any] = {}
        part = destination.with_suffix(destination.suffix + ".part")
        # Readable by its owner only: it holds everything, password hashes and sessions included.
        handle = os.fdopen(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
        try:
            _write_archive(handle, folder / database_file, database_file, manifest, files)
        except BaseException:
            handle.close()
            part.unlink(missing_ok=True)
            raise
        handle.close()
        # Only a finished backup gets the name asked for: a half-written one is never mistaken for it.
        part.rename(destination)
    tables = manifest["tables"]
    return Summary(tables=len(tables), rows=sum(t["rows"] for t in tables.values()), files=len(files),
                   bytes=destination.stat().st_size)


def _write_archive(handle: Any, database: Path, database_file: str, manifest: dict[str, Any],
                   files: dict[str, Any]) -> None:
    with tarfile.open(fileobj=handle, mode="w") as archive:
        archive.add(database, arcname=database_file)
        root = Path(settings.MEDIA_ROOT)
        for path in _media_files():
            name = path.relative_to(root).as_posix()
            files[name] = {"bytes": path.stat().st_size, "sha256": _file_sha256(path)}
            archive.add(path, arcname=f"media/{name}")
        manifest["files"] = files
        data = json.dumps(manifest, indent=1).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(data)
        info.mode = 0o600
        archive.addfile(info, io.BytesIO(data))


def _postgres_dump(target: Path) -> dict[str, dict[str, Any]]:
    """pg_dump and the checksums from one snapshot: a transaction exports it, pg_dump reads it, and the
    checksums are read in that transaction."""
    args, env = _postgres_environment()
    dump = _tool("pg_dump")
    with connections["default"].cursor() as probe:
        probe.execute("SELECT 1")
    raw = connections["default"].connection
    assert raw is not None
    with raw.cursor() as cursor:
        cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try:
            cursor.execute("SELECT pg_export_snapshot()")
            row = cursor.fetchone()
            snapshot = row[0] if row else ""
            done = subprocess.run([dump, *args, "--format=custom", "--no-owner", f"--snapshot={snapshot}",
                                   "-f", str(target)], env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
            cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            existing = {r[0] for r in cursor.fetchall()}
            return fingerprints(cursor, existing, lambda table: raw.cursor(name=f"fingerprint_{table}"))
        finally:
            cursor.execute("ROLLBACK")


def _safe_name(name: Any) -> str:
    """A file name from a manifest, if it stays inside the media folder: relative, without "..", plain."""
    if not isinstance(name, str) or not name or name.startswith("/") or "\\" in name:
        raise BackupError(f"The backup names a file that may not be restored: {name!r}.")
    if any(part in {"", ".", ".."} for part in name.split("/")):
        raise BackupError(f"The backup names a file that may not be restored: {name!r}.")
    return name


def read_manifest(source: Path) -> dict[str, Any]:
    """The backup's manifest, checked: every table and file it names is there, as a plain file, inside the
    places a restore writes to."""
    try:
        with tarfile.open(source) as archive:
            member = archive.extractfile(MANIFEST)
            if member is None:
                raise KeyError(MANIFEST)
            manifest: dict[str, Any] = json.loads(member.read())
            members = {m.name: m for m in archive.getmembers()}
    except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
        raise BackupError(f"{source} is not a Lägesbild backup ({exc}).") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{source} was made by another version of Lägesbild, or is not a Lägesbild backup.")
    if manifest.get("database") not in {"sqlite", "postgresql"} or not isinstance(manifest.get("tables"), dict) \
            or not isinstance(manifest.get("files"), dict):
        raise BackupError(f"{source} is not a whole Lägesbild backup: its manifest lacks the database or files.")
    database = SQLITE_FILE if manifest["database"] == "sqlite" else POSTGRES_FILE
    for name in [database, *(f"media/{_safe_name(n)}" for n in manifest["files"])]:
        if name not in members or not members[name].isfile():
            raise BackupError(f"{source} is not a whole Lägesbild backup: {name} is missing from it.")
    return manifest


def database_is_empty() -> bool:
    from lagesbild.forums.models import Forum

    with connection.cursor() as cursor:
        if Forum._meta.db_table not in connection.introspection.table_names(cursor):
            return True
    return not Forum.objects.exists()


def restore(source: Path) -> Summary:
    """Put the backup's database and files back, then check every table and file against its manifest.

    Everything that can be checked before the database is touched is: the files' checksums, and on SQLite the
    database copy's own row counts and checksums. The database as it was is kept beside it first (on SQLite a
    copy, on PostgreSQL a pg_dump), and its name is returned in `Summary.kept`.
    """
    manifest = read_manifest(source)
    if manifest["database"] != connection.vendor:
        raise BackupError(f"This backup is of a {manifest['database']} database; LAGESBILD_DATABASE_URL names a "
                          f"{connection.vendor} one. Restore it to the same kind of database.")
    root = Path(settings.MEDIA_ROOT).resolve()
    with tempfile.TemporaryDirectory(prefix="lagesbild-restore-") as work:
        folder = Path(work)
        with tarfile.open(source) as archive:
            archive.extractall(folder, filter="data")
        differ = [f"media/{name}" for name, expected in manifest["files"].items()
                  if _file_sha256(folder / "media" / name) != expected.get("sha256")]
        if connection.vendor == "sqlite":
            copy = _sqlite_fingerprints(folder / SQLITE_FILE)
            differ += [table for table, expected in manifest["tables"].items() if copy.get(table) != expected]
        if differ:
            raise BackupError("The backup is damaged; nothing was restored. These differ from its manifest: "
                              + ", ".join(differ))
        kept = _keep_current(source)
        if connection.vendor == "sqlite":
            _sqlite_restore(folder / SQLITE_FILE)
        else:
            _postgres_restore(folder / POSTGRES_FILE)
        for name in manifest["files"]:
            target = (root / name).resolve()
            if not target.is_relative_to(root):  # read_manifest refused such names; never write outside
                raise BackupError(f"The backup names a file outside the media folder: {name}.")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / "media" / name, target)
    check(manifest)
    spatial_index.vacuum(connection)  # PostgreSQL: restored tables have no statistics or visibility map
    tables = manifest["tables"]
    return Summary(tables=len(tables), rows=sum(t["rows"] for t in tables.values()), files=len(manifest["files"]),
                   bytes=source.stat().st_size, kept=kept)


def _keep_current(source: Path) -> Path | None:
    """The database as it is now, beside the backup being restored (…before-restore-<time>), unless it is
    empty: a restore replaces everything, and a wrong backup must not be the end of the data."""
    if database_is_empty():
        return None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    if connection.vendor == "sqlite":
        kept = source.parent / f"{_sqlite_path().stem}.before-restore-{stamp}.sqlite3"
        current = sqlite3.connect(_sqlite_path())
        target = sqlite3.connect(kept)
        try:
            current.backup(target)
        finally:
            target.close()
            current.close()
    else:
        kept = source.parent / f"{connection.settings_dict['NAME']}.before-restore-{stamp}.pgdump"
        args, env = _postgres_environment()
        done = subprocess.run([_tool("pg_dump"), *args, "--format=custom", "--no-owner", "-f", str(kept)],
                              env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BackupError(f"Could not keep the current database before restoring (pg_dump: "
                              f"{done.stderr.strip()}); nothing was restored.")
    os.chmod(kept, 0o600)
    return kept


def _sqlite_restore(copy: Path) -> None:
    connections.close_all()
    source = sqlite3.connect(copy)
    target = sqlite3.connect(_sqlite_path())
    try:
        source.backup(target)  # page by page into the live file, under SQLite's own locks
    finally:
        target.close()
        source.close()


def _postgres_restore(dump: Path) -> None:
    """In one transaction: the schema emptied, the dump's schema and rows put back. If anything fails, the
    database stays as it was."""
    args, env = _postgres_environment()
    script = subprocess.run([_tool("pg_restore"), "--no-owner", "-f", "-", str(dump)], env=env,
                            capture_output=True, check=False)
    if script.returncode != 0:
        raise BackupError(f"pg_restore could not read the backup: {script.stderr.decode().strip()}")
    connections.close_all()
    sql = b"DROP SCHEMA public CASCADE;\nCREATE SCHEMA public;\n" + script.stdout
    done = subprocess.run([_tool("psql"), *args, "--single-transaction", "-v", "ON_ERROR_STOP=1", "-q", "-X",
                           "-f", "-"], input=sql, env=env, capture_output=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"The restore failed, and the database is as it was: {done.stderr.decode().strip()}")


def check(manifest: dict[str, Any]) -> None:
    """Every table and file as the manifest says, or BackupError naming what differs."""
    connections.close_all()
    if connection.vendor == "sqlite":
        found = _sqlite_fingerprints(_sqlite_path())
    else:
        with connection.cursor() as cursor:
            existing = set(connection.introspection.table_names(cursor))
        raw = connection.connection
        assert raw is not None
        with raw.transaction():  # as the backup read them: psycopg's own cursors, streaming
            found = fingerprints(None, existing, lambda table: raw.cursor(name=f"check_{table}"))
    differ = [f"{table} ({found.get(table, {}).get('rows', 'missing')} rows, backup {expected['rows']})"
              for table, expected in manifest["tables"].items() if found.get(table) != expected]
    root = Path(settings.MEDIA_ROOT)
    differ += [f"media/{name}" for name, expected in manifest["files"].items()
               if not (root / name).exists() or _file_sha256(root / name) != expected["sha256"]]
    if differ:
        raise BackupError("After the restore these differ from the backup: " + ", ".join(differ))
