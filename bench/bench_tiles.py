#!/usr/bin/env python3
"""Benchmark: vector tiles of the whole demo forum, through the whole Django stack.

    .venv/bin/python bench/bench_tiles.py --count 100000
    .venv/bin/python scripts/with_postgres.py -- .venv/bin/python bench/bench_tiles.py --count 1000000

Goal (issue 12): a low-zoom tile stays under 300 KB with 1,000,000 rows. For tiles over the forum's centre at
zooms 8 to 16 it reports the size, what the tile holds, the time to build it (median, nothing kept), the time
to answer it again while the forum's data has not changed (kept), and a revalidation with the ETag (304).

Then the map page's hexagon layer, for a 1366 x 768 view over the centre at zooms 10 and 12: the GeoJSON it
used to ask for (`/patterns/hexagons`) beside the vector tiles it asks for now (`hexagons=true`), in bytes and
milliseconds, built and revalidated.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import mapbox_vector_tile
from common import median, save, start, timed

if TYPE_CHECKING:
    from django.test import Client


def tile_at(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2**z
    return z, int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def map_view(client: Client, lon: float, lat: float, runs: int) -> dict[str, object]:
    """The hexagon layer of one screen: the old GeoJSON answer against the tiles that cover the screen."""
    from lagesbild.interop import tiles

    found: dict[str, object] = {}
    print(f"\n{'view':<8} {'GeoJSON bytes':>13} {'ms':>7} | {'tiles':>5} {'bytes':>8} {'built ms':>9} {'304 ms':>7}")
    for z in (10, 12):
        # 512-pixel tiles: the screen is 1366 / 512 tiles wide at its zoom.
        half_w, half_h = 1366 / 512 * 360 / 2**z / 2, 768 / 512 * 360 / 2**z / 2 * math.cos(math.radians(lat))
        bbox = f"{lon - half_w:.6f},{lat - half_h:.6f},{lon + half_w:.6f},{lat + half_h:.6f}"
        old = f"/api/forums/bench/patterns/hexagons?bbox={bbox}&zoom={z}"
        geojson_ms, geojson = timed(lambda old=old: client.get(old), runs)
        _z, x0, y0 = tile_at(lon - half_w, lat + half_h, z)
        _z, x1, y1 = tile_at(lon + half_w, lat - half_h, z)
        urls = [f"/api/forums/bench/tiles/WebMercatorQuad/{z}/{x}/{y}?hexagons=true"
                for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
        built_ms, answers = timed(lambda urls=urls: (tiles.kept.clear(), [client.get(u) for u in urls])[1], runs)
        tags = [a["ETag"] for a in answers]
        again_ms, _ = timed(lambda urls=urls, tags=tags: [client.get(u, HTTP_IF_NONE_MATCH=t)
                                                          for u, t in zip(urls, tags, strict=True)], runs)
        size = sum(len(a.content) for a in answers)
        print(f"zoom {z:<3} {len(geojson.content):>13} {median(geojson_ms):>7.0f} | {len(urls):>5} {size:>8} "
              f"{median(built_ms):>9.0f} {median(again_ms):>7.0f}")
        found[str(z)] = {"geojson_bytes": len(geojson.content), "geojson_ms": round(median(geojson_ms)),
                         "tiles": len(urls), "tile_bytes": size, "tiles_built_ms": round(median(built_ms)),
                         "tiles_revalidated_ms": round(median(again_ms))}
    return found


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
    results["map_view"] = map_view(client, lon, lat, args.runs)
    save("tiles", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
