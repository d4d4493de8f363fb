"""The self-hosted vector basemap: the PMTiles file (read by the browser in ranges) and the glyphs for its
labels. Signed-in members only: the file holds nobody's data, but serving it to anyone would make the
installation a free tile server."""

from __future__ import annotations

import re

from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.http import require_GET

from lagesbild import basemap, glyphs

RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
# Basemap data changes when the operator replaces the file, not with the forum's data: browsers may keep it.
CACHE = "private, max-age=86400"


def _signed_in(request: HttpRequest) -> HttpResponse | None:
    if not request.user.is_authenticated:
        return HttpResponse("Sign in first.", status=401, content_type="text/plain")
    return None


@require_GET
def pmtiles_file(request: HttpRequest) -> HttpResponseBase:
    refused = _signed_in(request)
    if refused:
        return refused
    config = basemap.configured()
    path = config.pmtiles_path
    if config.kind != "pmtiles" or path is None or not path.is_file():
        return HttpResponse("No basemap file is configured.", status=404, content_type="text/plain")
    size = path.stat().st_size
    match = RANGE.match(request.headers.get("Range", ""))
    if match is None:
        response: HttpResponseBase = FileResponse(path.open("rb"), content_type="application/octet-stream")
    else:
        first, last = match.groups()
        start = int(first) if first else max(0, size - int(last or 0))
        end = min(int(last), size - 1) if first and last else size - 1
        if start >= size or start > end:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        with path.open("rb") as handle:
            handle.seek(start)
            data = handle.read(end - start + 1)
        response = HttpResponse(data, status=206, content_type="application/octet-stream")
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = CACHE
    response["ETag"] = f'"{int(path.stat().st_mtime)}-{size}"'
    return response


@require_GET
def glyph_range(request: HttpRequest, fontstack: str, start: int, end: int) -> HttpResponse:
    refused = _signed_in(request)
    if refused:
        return refused
    if start % 256 or end != start + 255 or start > 65280 or len(fontstack) > 200:
        return HttpResponse("No such range.", status=404, content_type="text/plain")
    response = HttpResponse(glyphs.glyph_range(fontstack, start), content_type="application/x-protobuf")
    response["Cache-Control"] = CACHE
    return response

