"""Photos keep nothing but their pixels: no comment, XMP, IPTC, ICC, GPS or maker notes, in the photo or its
thumbnail, from JPEG, PNG or WebP; the picture upright; colours kept when the profile goes."""

from __future__ import annotations

import io
import struct
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageCms, PngImagePlugin

from lagesbild.deviations.photos import MAX_EDGE, prepare_photo

SECRET = b"HEMLIG-KAMERA-4711"


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """The marker and payload of every JPEG segment before the image data."""
    assert data[:2] == b"\xff\xd8"
    position, segments = 2, []
    while position < len(data):
        marker = data[position + 1]
        if marker == 0xDA:  # start of scan: the compressed pixels follow
            break
        length = struct.unpack(">H", data[position + 2:position + 4])[0]
        segments.append((marker, data[position + 4:position + 2 + length]))
        position += 2 + length
    return segments


def with_segment(jpeg: bytes, marker: int, payload: bytes) -> bytes:
    """The JPEG with one more segment right after its start."""
    return jpeg[:2] + bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def exif_with_everything() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0131] = SECRET.decode()  # Software
    exif[0x0112] = 6  # Orientation: the camera was turned; the picture must be rotated 90° clockwise
    exif[0x8825] = {1: "N", 2: (59.0, 14.0, 0.0), 3: "E", 4: (18.0, 5.0, 0.0)}  # GPS
    exif.get_ifd(0x8769)[0x927C] = SECRET  # maker notes
    return exif


def tagged_jpeg() -> bytes:
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif_with_everything(), comment=SECRET,
               icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
               xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + SECRET + b"</x:xmpmeta>")
    # IPTC (Photoshop's APP13), which Pillow cannot write itself.
    return with_segment(buffer.getvalue(), 0xED, b"Photoshop 3.0\x00" + SECRET)


def tagged_png() -> bytes:
    image = Image.new("RGB", (64, 48), (30, 200, 30))
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", SECRET.decode())
    info.add_text("XML:com.adobe.xmp", SECRET.decode(), zip=True)
    info.add_itxt("Author", SECRET.decode(), lang="sv")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, exif=exif_with_everything())
    return buffer.getvalue()


def tagged_webp() -> bytes:
    image = Image.new("RGB", (64, 48), (30, 30, 200))
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", exif=exif_with_everything(), xmp=SECRET)
    return buffer.getvalue()


@pytest.mark.parametrize(("name", "make"), [("foto.jpg", tagged_jpeg), ("foto.png", tagged_png),
                                            ("foto.webp", tagged_webp)])
def test_nothing_but_pixels_is_kept(name: str, make: Any) -> None:
    original = make()
    assert SECRET in original or SECRET in Image.open(io.BytesIO(original)).info.get("Comment", "").encode()
    prepared = prepare_photo(SimpleUploadedFile(name, original))
    for data in (prepared.image, prepared.thumbnail):
        assert SECRET not in data
        markers = [marker for marker, _payload in jpeg_segments(data)]
        # JFIF's header, quantisation and Huffman tables, the frame: no APP1 (EXIF, XMP), APP2 (ICC),
        # APP13 (IPTC) or COM (comments).
        assert set(markers) <= {0xE0, 0xDB, 0xC4, 0xC0, 0xC2, 0xDD}, [hex(m) for m in markers]
        with Image.open(io.BytesIO(data)) as stored:
            assert not stored.getexif()
            assert not {"comment", "icc_profile", "xmp", "exif", "photoshop"} & set(stored.info)


def test_the_picture_is_turned_upright_before_its_orientation_goes() -> None:
    prepared = prepare_photo(SimpleUploadedFile("foto.jpg", tagged_jpeg()))
    assert (prepared.width, prepared.height) == (48, 64)  # rotated a quarter turn, as the camera meant


def display_p3_profile() -> bytes:
    """A minimal ICC v2 RGB profile with Display P3's primaries (a phone's wide colour space), built by hand:
    the profile an iPhone photo carries."""
    def s15(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + b"\0" * 4 + s15(x) + s15(y) + s15(z)

    curve = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, 0x0233) + b"\0\0"  # gamma 2.2
    text = b"Display P3 (test)\0"
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 8 + b"\0" * 3 + b"\0" * 67
    desc += b"\0" * (-len(desc) % 4)
    tags = [(b"desc", desc), (b"wtpt", xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", xyz(0.5151, 0.2412, -0.0011)),
            (b"gXYZ", xyz(0.2920, 0.6922, 0.0419)), (b"bXYZ", xyz(0.1571, 0.0666, 0.7841)),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset = 128 + 4 + 12 * len(tags)
    table, data = struct.pack(">I", len(tags)), b""
    for signature, body in tags:
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + b"\0" * 12 + b"acspAPPL" + b"\0" * 24 + xyz(0.9642, 1.0, 0.8249)[8:] + b"\0" * 48)
    assert len(header) == 128
    return header + table + data


def test_colours_survive_losing_the_profile() -> None:
    """A photo in Display P3 is converted to sRGB, not just stripped of its profile (which would dull it)."""
    image = Image.new("RGB", (32, 32), (200, 60, 40))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=100, subsampling=0, icc_profile=display_p3_profile())
    prepared = prepare_photo(SimpleUploadedFile("p3.jpg", buffer.getvalue()))
    with Image.open(io.BytesIO(prepared.image)) as stored:
        assert "icc_profile" not in stored.info
        red, green, blue = stored.getpixel((16, 16))
    # The same colour in sRGB is a stronger red: more red, less green than the numbers in the P3 file.
    assert red > 210 and green < 55, (red, green, blue)


def test_a_huge_photo_is_decoded_at_a_reduced_scale(settings: Any) -> None:
    """A 40-megapixel JPEG is decoded at half size straight from its compressed data (see bench/ for times)."""
    settings.LAGESBILD_PHOTO_MAX_BYTES = 50 * 2**20
    image = Image.new("RGB", (7800, 5200), (120, 120, 120))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=60)
    prepared = prepare_photo(SimpleUploadedFile("stor.jpg", buffer.getvalue()))
    assert max(prepared.width, prepared.height) == MAX_EDGE
