"""Streets under the small maps drawn on the server: tiles fetched from the (local) tile server, in the right
place, kept in the cache, and the plain outline when there is no raster basemap or the tile server is down."""

from __future__ import annotations

import base64
import io
import socket
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader

from lagesbild import basemap_picture, staticmap
from lagesbild.meetings import protocol, services
from lagesbild.places import services as places
from tests.basemaps import LANDMARK, LANDMARK_COLOUR, RASTER_COLOUR, TileServer
from tests.conftest import World
from tests.test_meetings import at


@pytest.fixture(autouse=True)
def _fresh(settings: Any, tmp_path: Any) -> None:
    """An empty tile cache and no memory of failed tile servers, for each test."""
    settings.LAGESBILD_TILE_CACHE_DIR = str(tmp_path / "tiles")
    settings.LAGESBILD_PMTILES_PATH = ""
    basemap_picture._failed.clear()


def _close(pixel: Any, colour: tuple[int, int, int], tolerance: int = 12) -> bool:
    return bool((np.abs(np.asarray(pixel, dtype=int) - np.array(colour)) <= tolerance).all())


def _frame() -> staticmap.Frame:
    west, south, east, north = LANDMARK
    return staticmap.Frame(staticmap.padded((west, south, east, north), 2.0), 640, 400)


def test_the_tiles_land_where_they_belong(tile_server: TileServer) -> None:
    frame = _frame()
    picture = basemap_picture.picture(frame, pixels_per_unit=1.0)
    assert picture is not None
    assert picture.size == (640, 400)
    pixels = np.asarray(picture)
    # The landmark's centre, and a point well outside it, where the frame puts them.
    x, y = frame.xy((LANDMARK[0] + LANDMARK[2]) / 2, (LANDMARK[1] + LANDMARK[3]) / 2)
    assert _close(pixels[int(y), int(x)], LANDMARK_COLOUR)
    x, y = frame.xy(LANDMARK[2] + 0.002, LANDMARK[3] + 0.001)
    assert _close(pixels[int(y), int(x)], RASTER_COLOUR)
    # Its edges within two pixels of where the frame draws them: the west edge, across the middle row.
    west_x, middle_y = frame.xy(LANDMARK[0], (LANDMARK[1] + LANDMARK[3]) / 2)
    row = pixels[int(middle_y)]
    inside = [i for i in range(640) if _close(row[i], LANDMARK_COLOUR, 40)]
    assert abs(inside[0] - west_x) <= 2
    # And the north edge, down the middle column: latitude is where Web Mercator and the frame differ.
    middle_x, north_y = frame.xy((LANDMARK[0] + LANDMARK[2]) / 2, LANDMARK[3])
    column = pixels[:, int(middle_x)]
    inside = [j for j in range(400) if _close(column[j], LANDMARK_COLOUR, 40)]
    assert abs(inside[0] - north_y) <= 2


def test_tiles_come_from_the_cache_the_second_time(tile_server: TileServer, settings: Any) -> None:
    before = len(tile_server.requests)
    assert basemap_picture.picture(_frame()) is not None
    fetched = len(tile_server.requests) - before
    assert 1 <= fetched <= basemap_picture.MAX_TILES
    assert basemap_picture.picture(_frame()) is not None
    assert len(tile_server.requests) - before == fetched  # nothing asked again
    cached = list(basemap_picture.cache_dir().rglob("*.tile"))
    assert len(cached) == fetched


def test_a_map_of_a_whole_city_asks_for_a_bounded_number_of_tiles(tile_server: TileServer) -> None:
    before = len(tile_server.requests)
    frame = staticmap.Frame((17.75, 59.2, 18.25, 59.45), 640, 400)
    assert basemap_picture.picture(frame, pixels_per_unit=6) is not None
    assert len(tile_server.requests) - before <= basemap_picture.MAX_TILES


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_tile_server_that_is_down_leaves_the_plain_map_and_is_not_asked_again(settings: Any) -> None:
    settings.LAGESBILD_TILE_URL = f"http://127.0.0.1:{_closed_port()}/{{z}}/{{x}}/{{y}}.png"
    svg = staticmap.svg(_frame(), title="Karta", area={"type": "Polygon", "coordinates": [[
        [18.08, 59.24], [18.10, 59.24], [18.10, 59.25], [18.08, 59.24]]]})
    assert "<image" not in svg
    assert 'fill="#ffffff"' in svg  # the area white on the plain background, as without a basemap
    assert settings.LAGESBILD_TILE_URL in basemap_picture._failed
    assert basemap_picture.picture(_frame()) is None


def test_without_a_raster_basemap_there_are_no_tiles(settings: Any, tile_server: TileServer, tmp_path: Any) -> None:
    before = len(tile_server.requests)
    settings.LAGESBILD_TILE_URL = ""  # the operator chose no basemap: the documented plain outline
    assert basemap_picture.picture(_frame()) is None
    assert "<image" not in staticmap.svg(_frame(), title="Karta")
    assert len(tile_server.requests) == before


def _picture_in(svg: str) -> Image.Image:
    start = svg.index('href="data:image/jpeg;base64,') + len('href="data:image/jpeg;base64,')
    return Image.open(io.BytesIO(base64.b64decode(svg[start:svg.index('"', start)])))


def test_the_place_page_shows_streets_and_says_whose_they_are(world: World, settings: Any) -> None:
    settings.LAGESBILD_TILE_ATTRIBUTION = "© Testkartan"
    place = places.create_place(world.coordinator, places.PlaceInput(
        name="Kvarteret", lon=(LANDMARK[0] + LANDMARK[2]) / 2, lat=(LANDMARK[1] + LANDMARK[3]) / 2, radius_m=150))
    page = world.client(world.viewer).get(f"/f/{world.forum.slug}/platser/{place.pk}/").content.decode()
    svg = page[page.index("<svg"):page.index("</svg>")]
    pixels = np.asarray(_picture_in(svg).convert("RGB"))
    # The landmark is under the place's centre, paled like the rest of the basemap.
    washed = tuple(round(c * 0.65 + 255 * 0.35) for c in LANDMARK_COLOUR)
    height, width = pixels.shape[:2]
    assert _close(pixels[height // 2, width // 2], washed, 16)
    assert "© Testkartan" in svg


def test_the_protocol_pdf_draws_the_basemap(world: World, settings: Any) -> None:
    world.report(world.police_reporter, observed_at=at(1, 3))
    content = _published_content(world)

    def images(pdf: bytes) -> int:
        return sum(len(page.images) for page in PdfReader(io.BytesIO(pdf)).pages)

    assert images(protocol.pdf_bytes(content)) == 1
    settings.LAGESBILD_TILE_URL = ""  # the operator chose no basemap: the documented plain outline
    assert images(protocol.pdf_bytes(content)) == 0


def _published_content(world: World) -> dict[str, Any]:
    meeting = services.schedule_meeting(world.coordinator, services.MeetingInput(held_at=at(10, 3),
                                                                                 period_start=at(10, 2)))
    services.build_agenda(world.coordinator, meeting.pk)
    return services.publish_protocol(world.coordinator, meeting.pk).content
