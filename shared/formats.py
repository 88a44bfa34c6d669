"""The image formats the service accepts: their stored extensions, MIME types and file-name suffixes.

Apart from shared/images.py (which decodes them) so that light tools (`dogbreed classify`, the
client) know them without loading Pillow or numpy.
"""
from __future__ import annotations

# HEIF (iPhone photos: HEIC) is decoded by pillow-heif, AVIF by Pillow itself (11.3 and later).
ALLOWED_FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff",
                   "HEIF": "heic", "AVIF": "avif"}
MIME_TYPES = {
    "JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif",
    "WEBP": "image/webp", "BMP": "image/bmp", "TIFF": "image/tiff",
    "HEIF": "image/heic", "AVIF": "image/avif",
}
# The file-name suffixes of those formats, for tools that pick the photos out of a folder.
IMAGE_SUFFIXES = frozenset({f".{extension}" for extension in ALLOWED_FORMATS.values()} | {".jpeg", ".tif", ".heif"})
