"""Photos: accept common camera formats, re-encode, drop every bit of metadata, make a thumbnail.

What is stored is a new image made of the original's pixels and nothing else: turned upright by its
orientation tag and converted to sRGB by its colour profile first, then copied into a fresh image with no
EXIF (GPS positions, camera serial numbers, maker notes, embedded thumbnails), no XMP, IPTC or ICC data, and
no JPEG comments or PNG text chunks, which Pillow would otherwise carry over into what it saves.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext as _
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from lagesbild.errors import TooLarge, UnsupportedMedia

try:  # HEIC from iPhones, where the wheel for this platform exists.
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIF_SUPPORTED = True
except ImportError:  # pragma: no cover - depends on the platform's wheels
    HEIF_SUPPORTED = False

ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP", "HEIF"}
ACCEPTED_CONTENT_TYPES = "image/jpeg,image/png,image/webp,image/heic,image/heif"
MAX_EDGE = 2560
THUMB_EDGE = 480
# Refuse images that would expand to more than this many pixels in memory (a "decompression bomb").
MAX_PIXELS = 60_000_000


@dataclass(frozen=True)
class PreparedPhoto:
    image: bytes
    thumbnail: bytes
    width: int
    height: int


def prepare_photo(upload: UploadedFile) -> PreparedPhoto:
    """Validate and re-encode one upload, in memory. Nothing is written until the deviation is saved."""
    name = upload.name or _("the file")
    limit = settings.LAGESBILD_PHOTO_MAX_BYTES
    if upload.size is not None and upload.size > limit:
        raise TooLarge(
            _("%(name)s is too large: photos may be at most %(mb)d MB.") % {"name": name, "mb": limit // 2**20},
            field="photos",
        )
    try:
        upload.seek(0)
        with Image.open(upload) as probe:
            fmt = probe.format or ""
            if fmt not in ACCEPTED_FORMATS:
                raise UnidentifiedImageError(fmt)
            if probe.width * probe.height > MAX_PIXELS:
                raise TooLarge(_("%(name)s has too many pixels.") % {"name": name}, field="photos")
            if fmt == "JPEG":
                # Decode a JPEG straight at the largest scale (1/2, 1/4 or 1/8) still at least MAX_EDGE wide:
                # a 60-megapixel photo then costs a fraction of a full decode.
                probe.draft("RGB", (MAX_EDGE, MAX_EDGE))
            probe.load()
            profile = probe.info.get("icc_profile")
            # Turn the picture upright before the orientation tag disappears with the rest of EXIF.
            ImageOps.exif_transpose(probe, in_place=True)
            upright = probe if probe.mode == "RGB" else probe.convert("RGB")
            upright.thumbnail((MAX_EDGE, MAX_EDGE), reducing_gap=3.0)
            image = _pixels_only(_to_srgb(upright, profile))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnsupportedMedia(
            _("%(name)s is not a photo we can read. Use JPEG, PNG, WebP or HEIC.") % {"name": name},
            field="photos",
        ) from exc
    full = io.BytesIO()
    image.save(full, format="JPEG", quality=85, optimize=True)
    thumb_image = image.copy()
    thumb_image.thumbnail((THUMB_EDGE, THUMB_EDGE))
    thumb = io.BytesIO()
    thumb_image.save(thumb, format="JPEG", quality=80, optimize=True)
    return PreparedPhoto(image=full.getvalue(), thumbnail=thumb.getvalue(), width=image.width,
                         height=image.height)


def _to_srgb(image: Image.Image, profile: bytes | None) -> Image.Image:
    """The image in sRGB: a photo in another colour space (an iPhone's Display P3) keeps its colours once
    its profile is gone."""
    if not profile:
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        converted = ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # a broken profile: keep the pixels as they are
    return converted or image


def _pixels_only(image: Image.Image) -> Image.Image:
    """A new image holding only these pixels: no info dictionary, so nothing of the original's metadata
    (comments, text chunks, EXIF, XMP, ICC) can reach the file that is saved."""
    clean = Image.new("RGB", image.size)
    clean.paste(image)
    return clean


def write_photo_files(forum_id: int, photo: PreparedPhoto, written: list[str]) -> tuple[str, str]:
    """Save both files under random names; record each path in `written` so a failure can remove them."""
    stem = f"photos/{forum_id}/{uuid.uuid4().hex}"
    image_path = default_storage.save(f"{stem}.jpg", ContentFile(photo.image))
    written.append(image_path)
    thumb_path = default_storage.save(f"{stem}.thumb.jpg", ContentFile(photo.thumbnail))
    written.append(thumb_path)
    return image_path, thumb_path


def delete_files(paths: list[str]) -> None:
    for path in paths:
        default_storage.delete(path)
