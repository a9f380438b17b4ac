"""Photos of resources: checked by really opening them with Pillow (JPEG,
PNG or WebP; not larger than the configured bytes; sane dimensions),
re-encoded (which drops metadata such as a camera's GPS position and any
bytes that are not the picture), with a JPEG thumbnail; kept in the
database and served by the app."""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from io import BytesIO

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, undefer

from booking.authz import Actor
from booking.domain.errors import N_, NotFound, ValidationFailed
from booking.models.catalog import ResourcePhoto
from booking.services import audit
from booking.services.catalog import resource_for_change

FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
MIN_SIDE = 16
MAX_SIDE = 12_000
MAX_PIXELS = 50_000_000
THUMBNAIL_SIZE = (480, 360)
MAX_PHOTOS = 12


@dataclass(frozen=True)
class CheckedImage:
    image: Image.Image
    format: str
    width: int
    height: int


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed({"file": [message]})


def check_image(data: bytes, max_bytes: int) -> CheckedImage:
    """Open the upload as an image and check it; 422 on the ``file`` field
    when it is empty, too large, not an image, of another type, or of
    dimensions no photo has."""
    if not data:
        raise _refuse(N_("The file is empty."))
    if len(data) > max_bytes:
        raise _refuse(N_("The photo is too large."))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(BytesIO(data))
            kind = probe.format
            width, height = probe.size
            probe.verify()
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refuse(N_("The file is not a JPEG, PNG or WebP image.")) from None
    except Exception:  # a truncated or corrupt file fails in many ways
        raise _refuse(N_("The file is not a JPEG, PNG or WebP image.")) from None
    if kind not in FORMATS:
        raise _refuse(N_("The file is not a JPEG, PNG or WebP image."))
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise _refuse(N_("A photo is 16 to 12,000 pixels wide and high."))
    if width * height > MAX_PIXELS:
        raise _refuse(N_("The photo has too many pixels."))
    try:
        image = Image.open(BytesIO(data))
        image.load()
    except Exception:
        raise _refuse(N_("The file is not a JPEG, PNG or WebP image.")) from None
    return CheckedImage(image=image, format=kind, width=width, height=height)


def _flatten(image: Image.Image) -> Image.Image:
    """RGB on white, for JPEG (which has no transparency)."""
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB") if image.mode != "RGB" else image


def encode(checked: CheckedImage) -> tuple[bytes, bytes, int, int]:
    """The re-encoded photo (upright, without metadata), its JPEG thumbnail,
    and the photo's width and height."""
    image = ImageOps.exif_transpose(checked.image)
    out = BytesIO()
    if checked.format == "JPEG":
        _flatten(image).save(out, "JPEG", quality=88, optimize=True)
    elif checked.format == "PNG":
        image.save(out, "PNG", optimize=True)
    else:
        image.save(out, "WEBP", quality=88)
    thumb = _flatten(image.copy())
    thumb.thumbnail(THUMBNAIL_SIZE)
    small = BytesIO()
    thumb.save(small, "JPEG", quality=80, optimize=True)
    return out.getvalue(), small.getvalue(), image.width, image.height


def add_photo(
    session: Session,
    actor: Actor,
    resource_id: int,
    data: bytes,
    caption: str = "",
    *,
    max_bytes: int,
) -> ResourcePhoto:
    resource = resource_for_change(session, actor, resource_id)
    caption = (caption or "").strip()
    if len(caption) > 200:
        raise ValidationFailed({"caption": [N_("This text is too long.")]})
    count = session.scalar(
        select(func.count(ResourcePhoto.id)).where(ResourcePhoto.resource_id == resource.id)
    )
    if count >= MAX_PHOTOS:
        raise _refuse(N_("A resource has at most 12 photos; delete one first."))
    checked = check_image(data, max_bytes)
    picture, thumbnail, width, height = encode(checked)
    photo = ResourcePhoto(
        resource_id=resource.id,
        content_type=FORMATS[checked.format],
        data=picture,
        thumbnail=thumbnail,
        width=width,
        height=height,
        caption=caption,
    )
    session.add(photo)
    session.flush()
    audit.record(
        session,
        actor,
        "resource.photo_add",
        photo,
        after={
            "resource_id": resource.id,
            "content_type": photo.content_type,
            "width": width,
            "height": height,
            "bytes": len(picture),
            "caption": caption,
        },
    )
    return photo


def delete_photo(session: Session, actor: Actor, resource_id: int, photo_id: int) -> None:
    resource = resource_for_change(session, actor, resource_id)
    photo = session.get(ResourcePhoto, photo_id)
    if photo is None or photo.resource_id != resource.id:
        raise NotFound(N_("No such photo."))
    before = {"resource_id": resource.id, "caption": photo.caption}
    session.delete(photo)
    session.flush()
    audit.record(
        session, actor, "resource.photo_delete", ("resource_photos", photo_id), before=before
    )


@dataclass(frozen=True)
class PhotoFile:
    data: bytes
    content_type: str
    etag: str


def photo_file(session: Session, photo_id: int, *, thumbnail: bool = False) -> PhotoFile:
    """The bytes of a photo or its thumbnail (photos are public, as their
    resource is). A photo never changes, so its ETag is its id and size."""
    column = ResourcePhoto.thumbnail if thumbnail else ResourcePhoto.data
    photo = session.scalar(
        select(ResourcePhoto).where(ResourcePhoto.id == photo_id).options(undefer(column))
    )
    if photo is None:
        raise NotFound(N_("No such photo."))
    data = photo.thumbnail if thumbnail else photo.data
    content_type = "image/jpeg" if thumbnail else photo.content_type
    etag = hashlib.sha256(f"{photo.id}:{thumbnail}:{len(data)}".encode()).hexdigest()[:32]
    return PhotoFile(data=data, content_type=content_type, etag=etag)
