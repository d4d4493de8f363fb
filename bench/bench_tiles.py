#!/usr/bin/env python3
"""Benchmark: vector tiles of the whole demo forum, through the whole Django stack.

    .venv/bin/python bench/bench_tiles.py --count 100000
    .venv/bin/python scripts/with_postgres.py -- .venv/bin/python bench/bench_tiles.py --count 1000000

Goal (issue 12): a low-zoom tile stays under 300 KB with 1,000,000 rows. For tiles over the forum's centre at
zooms 8 to 16 it reports the size, what the tile holds, the time to build it (median, nothing kept), the time
to answer it again while the forum's data has not changed (kept), and a revalidation with the ETag (304).
"""

from __future__ import annotations

import math

import mapbox_vector_tile
from common import median, save, start, timed


def tile_at(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2**z
    return z, int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def main() -> int:
    args, load_seconds = start(__doc__ or "", runs=5)
    from django.test import Client

    from lagesbild import geometry
    from lagesbild.forums.models import Forum, User
    from lagesbild.interop import tiles

    forum = Forum.objects.get(slug="bench")
    west, south, east, north = geometry.area_bounds(forum.area) or (18.0, 59.2, 18.2, 59.3)
    lon, lat = (west + east) / 2, (south + north) / 2
    client = Client()
    client.force_login(User.objects.get(email="samordnare@farsta.demo"))
    results: dict[str, object] = {"count": args.count, "load_seconds": round(load_seconds, 1), "tiles": {}}
    print(f"{'zoom':>4} {'bytes':>9} {'holds':<28} {'build ms':>9} {'kept ms':>8} {'304 ms':>7}")
    for z in (8, 10, 12, 13, 14, 16):
        url = "/api/forums/bench/tiles/WebMercatorQuad/{}/{}/{}".format(*tile_at(lon, lat, z))
        timings, response = timed(lambda url=url: (tiles.kept.clear(), client.get(url))[1], args.runs)
        kept, _same = timed(lambda url=url: client.get(url), args.runs)
        assert response.status_code == 200, response.content[:200]
        body = response.content
        layers = mapbox_vector_tile.decode(body) if body else {}
        holds = ", ".join(f"{len(layer['features'])} {name}" for name, layer in layers.items()
                          if name != "cell-centres")
        tag = response["ETag"]
        revalidations, again = timed(lambda url=url, tag=tag: client.get(url, HTTP_IF_NONE_MATCH=tag), args.runs)
        assert again.status_code == 304
        print(f"{z:>4} {len(body):>9} {holds:<28} {median(timings):>9.1f} {median(kept):>8.1f} "
              f"{median(revalidations):>7.1f}")
        results["tiles"][str(z)] = {  # type: ignore[index]
            "bytes": len(body), "holds": holds, "build_ms": round(median(timings), 1),
            "kept_ms": round(median(kept), 1),
            "revalidate_ms": round(median(revalidations), 1)}
    save("tiles", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
