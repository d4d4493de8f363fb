"""What the PDFs (a meeting's protocol, a walk's protocol) share: the font, the page footer, headings and
paragraphs, and a map drawn as vectors over the basemap's picture (fpdf2: pure Python).

Text is set in DejaVu Sans where the system has it (Debian's fonts-dejavu-core), which covers names in the
Latin, Greek and Cyrillic scripts (Łukasz, Þóra); scripts that need shaping, such as Arabic, print with their
letters unjoined. Without it, text is set in the PDF's built-in Helvetica, which covers Latin-1 only (å, ä, ö,
é …), other letters becoming "?".
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _
from fpdf import FPDF

from lagesbild import basemap, basemap_picture, staticmap

FONT_DIR = Path(os.environ.get("LAGESBILD_PDF_FONT_DIR", "/usr/share/fonts/truetype/dejavu"))


@lru_cache(maxsize=1)
def unicode_font() -> tuple[Path, Path] | None:
    """DejaVu Sans, regular and bold, if the system has them."""
    regular, bold = FONT_DIR / "DejaVuSans.ttf", FONT_DIR / "DejaVuSans-Bold.ttf"
    return (regular, bold) if regular.is_file() and bold.is_file() else None


# Helvetica covers Latin-1; a few common typographic characters are swapped for their nearest Latin-1
# forms, anything else for "?".
_REPLACEMENTS = {"\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                 "\u2026": "...", "\u2192": "->", "\u2022": "-", "\u00a0": " ", "\u202f": " "}


def printable(text: str) -> str:
    """The text as the PDF's font can set it."""
    if unicode_font() is not None:
        return text
    for char, replacement in _REPLACEMENTS.items():
        text = text.replace(char, replacement)
    return text.encode("latin-1", "replace").decode("latin-1")


class ProtocolPDF(FPDF):
    """An A4 document in Swedish: its title in large type on the first page, a footer naming it and numbering
    its pages, and headings and paragraphs in the built-in font."""

    def __init__(self, title: str, author: str, footer_text: str) -> None:
        super().__init__(format="A4")
        # Each style's file, read when first set: reading one takes a tenth of a second, and most documents
        # use two of the four.
        self.font_files: dict[str, Path] = {}
        font = unicode_font()
        if font is not None:
            self.font_files = {"": font[0], "B": font[1]}
            for style, name in (("I", "DejaVuSans-Oblique.ttf"), ("BI", "DejaVuSans-BoldOblique.ttf")):
                if (font[0].parent / name).is_file():  # fonts-dejavu-extra; without it, upright
                    self.font_files[style] = font[0].parent / name
        self.footer_text = footer_text
        self.set_title(printable(title))
        self.set_author(printable(author))
        self.set_lang("sv")
        self.set_auto_page_break(True, margin=16)
        self.add_page()
        # The title loads the bold face, which fpdf2's tables look up directly for their headings.
        self.set_font("Helvetica", "B", 18)
        self.multi_cell(self.epw, 9, printable(title), new_x="LMARGIN", new_y="NEXT")
        self.set_font("Helvetica", size=10)

    def set_font(self, family: str | None = None, style: Any = "", size: float = 0) -> None:
        """Helvetica, the name the drawing code uses, is DejaVu Sans where the system has it."""
        if unicode_font() is not None and (family or self.font_family).lower() in ("helvetica", "dejavu"):
            family = "DejaVu"
            # fpdf2 passes a TextEmphasis (B, I, U as flags) from its tables; we pass letters.
            letters = (style if isinstance(style, str) else getattr(style, "style", "")).upper()
            wanted = "".join(sorted(letters.replace("U", ""), key="BI".index))
            if wanted not in self.font_files:
                wanted = wanted.replace("I", "")  # no oblique installed: upright
                style = letters.replace("I", "")
            if f"dejavu{wanted}" not in self.fonts:
                self.add_font("DejaVu", wanted, str(self.font_files[wanted]))
        super().set_font(family, style, size)

    def heading(self, text: str, size: int = 13) -> None:
        self.ln(3)
        self.set_font("Helvetica", "B", size)
        self.multi_cell(self.epw, 7, printable(text), new_x="LMARGIN", new_y="NEXT")
        self.set_font("Helvetica", size=10)

    def para(self, text: str, style: str = "") -> None:
        self.set_font("Helvetica", style, 10)
        self.multi_cell(self.epw, 5, printable(text), new_x="LMARGIN", new_y="NEXT")
        self.set_font("Helvetica", size=10)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=8)
        self.set_text_color(90, 90, 90)
        page = _("page")  # not inside the f-string, where makemessages cannot find it
        self.cell(0, 6, printable(f"{self.footer_text} - {page} {self.page_no()}/{{nb}}"), align="C")


def hex_colour(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    try:
        return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)
    except ValueError:
        return (85, 85, 85)


def draw_map(pdf: FPDF, bbox: Sequence[float], left: float, top: float, width: float, height: float, *,
             area: dict[str, Any] | None = None, outlines: Sequence[tuple[str, dict[str, Any]]] = (),
             points: Sequence[tuple[float, float, str]] = (),
             lines: Sequence[tuple[Sequence[Sequence[float]], str, bool]] = (),
             markers: Sequence[tuple[float, float, str]] = ()) -> None:
    """A map to scale, north up: the area's outline, places' outlines, coloured points, lines
    (coordinates, colour, dashed) and numbered markers (lon, lat, label)."""
    frame = staticmap.Frame(tuple(bbox), width, height)  # type: ignore[arg-type]

    def at(lon: float, lat: float) -> tuple[float, float]:
        x, y = frame.xy(lon, lat)
        return left + x, top + y

    pdf.set_fill_color(244, 241, 234)
    pdf.rect(left, top, width, height, style="F")
    # The basemap's streets where a raster basemap is configured, at about 150 dpi (6 pixels per millimetre).
    picture = basemap_picture.picture(frame, pixels_per_unit=6)
    if picture is not None:
        pdf.set_image_filter("DCTDecode")  # JPEG: a photo-like picture of streets is a tenth of its PNG size
        pdf.image(basemap_picture.washed(picture), x=left, y=top, w=width, h=height)
        pdf.set_image_filter("FlateDecode")
    pdf.set_line_width(0.4)
    pdf.set_draw_color(20, 33, 61)
    for ring in staticmap.rings(area):
        pdf.polygon([at(lon, lat) for lon, lat in ring], style="D")
    pdf.set_draw_color(29, 78, 216)
    for _name, outline in outlines:
        for ring in staticmap.rings(outline):
            pdf.polygon([at(lon, lat) for lon, lat in ring], style="D")
    for coordinates, colour, dashed in lines:
        if len(coordinates) < 2:
            continue
        pdf.set_draw_color(*hex_colour(colour))
        pdf.set_line_width(0.7)
        if dashed:
            pdf.set_dash_pattern(dash=2, gap=1.2)
        pdf.polyline([at(c[0], c[1]) for c in coordinates])
        pdf.set_dash_pattern()
    pdf.set_line_width(0.1)
    pdf.set_draw_color(255, 255, 255)
    for lon, lat, colour in points:
        x, y = at(lon, lat)
        pdf.set_fill_color(*hex_colour(colour))
        pdf.circle(x=x, y=y, radius=0.9, style="FD")
    pdf.set_font("Helvetica", "B", 7)
    for lon, lat, label in markers:
        x, y = at(lon, lat)
        pdf.set_fill_color(161, 45, 17)
        pdf.set_text_color(255, 255, 255)
        pdf.circle(x=x, y=y, radius=2.2, style="FD")
        pdf.set_xy(x - 2.2, y - 2.2)
        pdf.cell(4.4, 4.4, printable(label), align="C")
    pdf.set_text_color(0, 0, 0)
    if picture is not None and basemap.configured().attribution:
        pdf.set_font("Helvetica", size=6)
        pdf.set_text_color(34, 34, 34)
        pdf.set_xy(left, top + height - 4)
        pdf.cell(width - 1, 3.5, printable(basemap.configured().attribution), align="R")
    length, label = staticmap.scale_bar(frame)
    pdf.set_draw_color(34, 34, 34)
    pdf.set_line_width(0.5)
    pdf.line(left + 4, top + height - 4, left + 4 + length, top + height - 4)
    pdf.set_font("Helvetica", size=7)
    pdf.set_xy(left + 4, top + height - 10)
    pdf.cell(20, 5, label)
    pdf.set_font("Helvetica", size=10)
    pdf.set_y(top + height + 2)
