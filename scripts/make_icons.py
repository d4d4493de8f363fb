#!/usr/bin/env python3
"""Draw the app's icons (the favicon's pin on dark blue) as the PNGs an installed web app needs.

    .venv/bin/python scripts/make_icons.py

Run once when the design changes; the PNGs are committed. "Maskable" icons keep the pin inside the central
80 % that every platform's mask leaves visible.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent.parent / "src" / "lagesbild" / "static" / "lagesbild" / "icons"
BLUE, YELLOW = (20, 33, 61), (255, 191, 71)


def icon(size: int, maskable: bool) -> Image.Image:
    scale = 4  # drawn large and scaled down, for smooth edges
    big = size * scale
    image = Image.new("RGB", (big, big), BLUE)
    draw = ImageDraw.Draw(image)
    if not maskable:
        image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
        draw = ImageDraw.Draw(image)
        draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=big * 6 // 32, fill=BLUE)
    # The favicon's 32-unit pin, shrunk into the safe zone for maskable icons.
    unit = big / 32 * (0.72 if maskable else 1.0)
    offset = (big - 32 * unit) / 2
    cx = offset + 16 * unit
    head = (cx - 8 * unit, offset + 5 * unit, cx + 8 * unit, offset + 21 * unit)
    draw.ellipse(head, fill=YELLOW)
    draw.polygon([(cx - 7.2 * unit, offset + 16.5 * unit), (cx + 7.2 * unit, offset + 16.5 * unit),
                  (cx, offset + 27 * unit)], fill=YELLOW)
    draw.ellipse((cx - 3.2 * unit, offset + 9.8 * unit, cx + 3.2 * unit, offset + 16.2 * unit), fill=BLUE)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for size in (192, 512):
        icon(size, maskable=False).save(OUT / f"icon-{size}.png", optimize=True)
        icon(size, maskable=True).save(OUT / f"maskable-{size}.png", optimize=True)
    icon(180, maskable=True).save(OUT / "apple-touch-icon.png", optimize=True)


if __name__ == "__main__":
    main()
