"""Photo processing: how long one upload takes to check and re-encode, by size and format (medians).

    .venv/bin/python bench/bench_photos.py [--runs 5]

Phones take 12-megapixel photos; some take 48 or more. Every photo is re-encoded in the request that uploads
it, up to six at a time, so this is time a reporter waits.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lagesbild.settings")
    os.environ.setdefault("LAGESBILD_SECRET_KEY", "benchmark-only-not-secret")
    os.environ.setdefault("LAGESBILD_PHOTO_MAX_BYTES", str(200 * 2**20))
    sys.path.insert(0, str(ROOT / "src"))
    import django

    django.setup()
    import numpy as np
    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    from lagesbild.deviations.photos import prepare_photo

    rng = np.random.default_rng(1)
    print(f"{'photo':28} {'bytes':>12} {'median ms':>10}")
    for megapixels, fmt in ((12, "JPEG"), (48, "JPEG"), (60, "JPEG"), (12, "PNG"), (48, "PNG")):
        width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
        height = int(width * 3 / 4)
        # A smooth gradient with some noise compresses like a photo, not like a flat colour.
        x = np.linspace(0, 255, width, dtype=np.float32)
        y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
        pixels = np.stack([(x + y) / 2, np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width))],
                          axis=2) + rng.normal(0, 8, (height, width, 3))
        buffer = io.BytesIO()
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format=fmt, quality=90)
        data = buffer.getvalue()
        times = []
        for _run in range(args.runs):
            started = time.perf_counter()
            prepare_photo(SimpleUploadedFile(f"photo.{fmt.lower()}", data))
            times.append((time.perf_counter() - started) * 1000)
        print(f"{megapixels:>3} MP {fmt:22} {len(data):>12,} {statistics.median(times):>10.0f}")


if __name__ == "__main__":
    main()
