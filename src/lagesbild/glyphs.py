"""Glyphs for the vector basemap's labels, made by Lägesbild itself: MapLibre draws map text from signed
distance fields of each character, fetched 256 characters at a time as protocol buffers. An offline
installation has no glyph server to fetch them from, so they are rendered here from a font (Pillow's own
FreeType font, so no system font is needed), the way node-fontnik makes them: 24 px, with a 3 px border,
and the distance to the glyph's edge coded so that 192 is the edge.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import ImageFont
from scipy.ndimage import distance_transform_edt

SIZE = 24
BUFFER = 3
RADIUS = 8
CUTOFF = 0.25


@lru_cache(maxsize=1)
def _font() -> ImageFont.FreeTypeFont:
    font = ImageFont.load_default(SIZE)
    assert isinstance(font, ImageFont.FreeTypeFont), "Pillow was built without FreeType"
    return font


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, value: int | bytes | str, signed: bool = False) -> bytes:
    if isinstance(value, int):
        if signed:
            value = (value << 1) ^ (value >> 31)  # zigzag, as protobuf's sint32
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def signed_distance_field(coverage: np.ndarray) -> np.ndarray:
    """A glyph's coverage (0-255, already padded by BUFFER) as MapLibre's SDF bytes."""
    inside = coverage >= 128
    if not inside.any():
        return np.zeros(coverage.shape, dtype=np.uint8)
    outside_distance = distance_transform_edt(~inside)
    inside_distance = distance_transform_edt(inside)
    # Pixel centres are half a pixel from the edge between them.
    distance = np.where(inside, -(inside_distance - 0.5), outside_distance - 0.5)
    value = 255 - 255 * (distance / RADIUS + CUTOFF)
    return np.clip(np.round(value), 0, 255).astype(np.uint8)


def _glyph(code: int) -> bytes | None:
    font = _font()
    character = chr(code)
    if code < 32 or not character.isprintable():
        return None
    mask, (left, top) = font.getmask2(character, mode="L")
    advance = round(font.getlength(character))
    width, height = mask.size
    ascent, _descent = font.getmetrics()
    above_baseline = ascent - top
    fields = [_field(1, code)]
    if width and height:
        coverage = np.pad(np.asarray(mask, dtype=np.float64).reshape(height, width), BUFFER)
        fields.append(_field(2, signed_distance_field(coverage).tobytes()))
    fields += [_field(3, width), _field(4, height), _field(5, left, signed=True),
               # The glyph's top above the baseline, less MapLibre's 27.5 (its alignment of glyphs made in the
               # browser with server glyphs, which count from above the em box).
               _field(6, round(above_baseline - 27.5), signed=True), _field(7, advance)]
    return b"".join(fields)


@lru_cache(maxsize=64)
def glyph_range(fontstack: str, start: int) -> bytes:
    """The protocol buffer for characters `start` to `start + 255`, named as the style asked for them."""
    end = start + 255
    glyphs = [_field(3, glyph) for code in range(start, end + 1) if (glyph := _glyph(code)) is not None]
    stack = _field(1, fontstack) + _field(2, f"{start}-{end}") + b"".join(glyphs)
    return _field(1, stack)
