"""API: the map's filter exported as CSV, XLSX, GeoJSON or GeoPackage."""

from __future__ import annotations

from django.http import FileResponse, HttpRequest, StreamingHttpResponse
from ninja import Field, Query, Router

from lagesbild.api import answers, member
from lagesbild.deviations.api import FilterQuery, filter_of
from lagesbild.interop import export

router = Router(tags=["export"])


class ExportQuery(FilterQuery):
    format: str = Field("csv", description="csv (Swedish Excel: UTF-8 with BOM, semicolons, decimal commas), "
                                           "xlsx, geojson or gpkg (GeoPackage)")
    crs: int = Field(4326, ge=0, le=99999, description="4326 (WGS 84 longitude, latitude) or 3006 "
                                                        "(SWEREF 99 TM easting, northing in metres)")


@router.get("/{forum}/export", summary="The deviations of the filter that you may see, as a file (audited)",
            response=answers(None),
            openapi_extra={"responses": {200: {"description": "The file", "content": {
                content_type: {"schema": {"type": "string", "format": "binary"}}
                for content_type in export.CONTENT_TYPES.values()}}}})
def export_deviations(request: HttpRequest, forum: str, params: Query[ExportQuery]
                      ) -> StreamingHttpResponse | FileResponse:
    membership = member(request, forum)
    result = export.export_deviations(membership, filter_of(params, membership.forum), params.format, params.crs)
    response: StreamingHttpResponse | FileResponse
    if result.file is not None:
        response = FileResponse(result.file, content_type=result.content_type, as_attachment=True,
                                filename=result.filename)
    else:
        assert result.chunks is not None
        response = StreamingHttpResponse(result.chunks, content_type=result.content_type)
        response["Content-Disposition"] = f'attachment; filename="{result.filename}"'
    response["X-Total-Count"] = str(result.count)
    return response
