"""Small maps drawn on the server, as SVG for pages and as vector drawing in PDFs.

They show the forum's area, places and points to scale, with north up: over the raster basemap where one is
configured (basemap_picture.py fetches and caches its tiles), on a plain background where none is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any

from lagesbild.geometry import BBox


@dataclass
class Frame:
    """Projects lon/lat into a width by height box, keeping the local aspect (metres east = metres north)."""

    bbox: BBox
    width: float
    height: float
    scale: float = 0.0
    x0: float = 0.0
    y0: float = 0.0

    def __post_init__(self) -> None:
        min_lon, min_lat, max_lon, max_lat = self.bbox
        self.kx = math.cos(math.radians((min_lat + max_lat) / 2))
        span_x = max((max_lon - min_lon) * self.kx, 1e-9)
        span_y = max(max_lat - min_lat, 1e-9)
        self.scale = min(self.width / span_x, self.height / span_y)
        self.x0 = (self.width - span_x * self.scale) / 2
        self.y0 = (self.height - span_y * self.scale) / 2

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        x = self.x0 + (lon - self.bbox[0]) * self.kx * self.scale
        y = self.height - (self.y0 + (lat - self.bbox[1]) * self.scale)
        return round(x, 1), round(y, 1)

    def metres_per_unit(self) -> float:
        return 111_320.0 / self.scale


def padded(bbox: BBox, fraction: float = 0.08, minimum_deg: float = 0.002) -> BBox:
    dx = max((bbox[2] - bbox[0]) * fraction, minimum_deg)
    dy = max((bbox[3] - bbox[1]) * fraction, minimum_deg / 2)
    return (bbox[0] - dx, bbox[1] - dy, bbox[2] + dx, bbox[3] + dy)


def rings(polygon: dict[str, Any] | None) -> list[list[list[float]]]:
    if not polygon:
        return []
    if polygon.get("type") == "MultiPolygon":
        return [ring for poly in polygon["coordinates"] for ring in poly]
    return list(polygon.get("coordinates", []))


def scale_bar(frame: Frame) -> tuple[float, str]:
    """A round length for a scale bar about a fifth of the map wide: (length in units, label)."""
    target = frame.metres_per_unit() * frame.width / 5
    nice = max(v for v in (10, 20, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000) if v <= max(target, 10))
    label = f"{nice // 1000} km" if nice >= 1000 else f"{nice} m"
    return nice / frame.metres_per_unit(), label


def svg(frame: Frame, *, title: str, area: dict[str, Any] | None = None,
        outlines: list[tuple[str, dict[str, Any]]] | None = None,
        points: list[tuple[float, float, str]] | None = None,
        shapes: list[tuple[list[list[float]], str, str]] | None = None,
        circles: list[tuple[float, float, float, str, str]] | None = None,
        lines: list[tuple[list[list[float]], str, bool]] | None = None) -> str:
    """An SVG map. `title` names it for screen readers; the page gives the same facts as a table.

    `circles` are (lon, lat, radius in metres, a short label such as a number, a tooltip): suggestions
    marked on the map and numbered as the page lists them. `lines` are (coordinates, colour, dashed): a
    planned route, a walked track.
    """
    from lagesbild import basemap, basemap_picture

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {frame.width:.0f} {frame.height:.0f}" '
             f'role="img" aria-label="{escape(title)}" class="static-map">',
             f'<rect width="{frame.width:.0f}" height="{frame.height:.0f}" fill="#f4f1ea"/>']
    picture = basemap_picture.picture(frame)
    if picture is not None:
        parts.append(f'<image href="{basemap_picture.data_uri(basemap_picture.washed(picture))}" x="0" y="0" '
                     f'width="{frame.width:.0f}" height="{frame.height:.0f}" preserveAspectRatio="none"/>')
    # Over streets the area is an outline only; on the plain background it is white, the world beyond it beige.
    area_fill = 'fill="none"' if picture is not None else 'fill="#ffffff"'
    for ring in rings(area):
        path = " ".join(f"{x},{y}" for x, y in (frame.xy(lon, lat) for lon, lat in ring))
        parts.append(f'<polygon points="{path}" {area_fill} stroke="#14213d" stroke-width="1.5" '
                     'stroke-dasharray="6 4"/>')
    opacity = ' fill-opacity="0.75"' if picture is not None else ""  # the streets show through the hexagons
    for ring, fill, name in shapes or []:  # filled polygons (hexagons), each with a tooltip
        path = " ".join(f"{x},{y}" for x, y in (frame.xy(lon, lat) for lon, lat in ring))
        parts.append(f'<polygon points="{path}" fill="{escape(fill)}"{opacity} stroke="#ffffff" '
                     f'stroke-width="0.5"><title>{escape(name)}</title></polygon>')
    for name, outline in outlines or []:
        for ring in rings(outline):
            path = " ".join(f"{x},{y}" for x, y in (frame.xy(lon, lat) for lon, lat in ring))
            parts.append(f'<polygon points="{path}" fill="#1d4ed8" fill-opacity="0.08" stroke="#1d4ed8" '
                         f'stroke-width="2"><title>{escape(name)}</title></polygon>')
    for coordinates, colour, dashed in lines or []:
        path = " ".join(f"{x},{y}" for x, y in (frame.xy(c[0], c[1]) for c in coordinates))
        dash = ' stroke-dasharray="8 5"' if dashed else ""
        parts.append(f'<polyline points="{path}" fill="none" stroke="{escape(colour)}" stroke-width="3" '
                     f'stroke-linejoin="round" stroke-linecap="round"{dash}/>')
    for lon, lat, color in points or []:
        x, y = frame.xy(lon, lat)
        parts.append(f'<circle cx="{x}" cy="{y}" r="4" fill="{escape(color)}" stroke="#ffffff" stroke-width="1"/>')
    for lon, lat, radius_m, label, name in circles or []:
        x, y = frame.xy(lon, lat)
        r = max(radius_m / frame.metres_per_unit(), 6)
        parts.append(f'<g><title>{escape(name)}</title><circle cx="{x}" cy="{y}" r="{r:.1f}" fill="#d95f27" '
                     'fill-opacity="0.25" stroke="#a12d11" stroke-width="2"/>'
                     f'<circle cx="{x}" cy="{y}" r="9" fill="#a12d11"/><text x="{x}" y="{y + 4}" font-size="12" '
                     f'font-weight="bold" fill="#ffffff" text-anchor="middle">{escape(label)}</text></g>')
    length, label = scale_bar(frame)
    y = frame.height - 12
    parts.append(f'<g class="scale"><line x1="10" y1="{y}" x2="{10 + length:.1f}" y2="{y}" stroke="#222" '
                 f'stroke-width="2"/><text x="10" y="{y - 5}" font-size="11" fill="#222">{label}</text></g>')
    parts.append('<text x="' + f"{frame.width - 14:.0f}" + '" y="18" font-size="12" fill="#222" '
                 'text-anchor="middle">N</text>')
    if picture is not None and basemap.configured().attribution:
        parts.append(f'<text x="{frame.width - 4:.0f}" y="{frame.height - 4:.0f}" font-size="10" fill="#222" '
                     'text-anchor="end" stroke="#ffffff" stroke-width="3" paint-order="stroke">'
                     f'{escape(basemap.configured().attribution)}</text>')
    parts.append("</svg>")
    return "".join(parts)
