"""Image decoding: the picture as a person sees it, one function for every stage that reads pixels.

Training, evaluation, nightly scoring, drift monitoring and the validation survey all call
`read_image`, so a model can never be trained on one reading of a file and scored on another.
A person sees a transparent icon on a page, not its hidden colour values: transparency is
composited onto a background (white unless `[FitPreprocessor] image_background` says otherwise);
16-bit, CMYK and other modes are converted; a photo's EXIF orientation is applied; an animated
GIF or WebP is its first frame.
"""

from __future__ import annotations

import os
import stat
import warnings

import numpy as np
from PIL import Image, ImageOps

from pipeline.stages.settings import DEFAULT_BACKGROUND, MAX_IMAGE_BYTES, WHITE, Background, parse_background  # noqa: F401 - re-exported

# Modes that carry transparency per pixel; P, L and RGB may carry one transparent colour (tRNS).
ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
GRAYSCALE_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
WIDE_GRAYSCALE = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})  # more than 8 bits a pixel
ORIENTATION = 0x0112  # the EXIF tag: 1 is upright
TURNED = frozenset({5, 6, 7, 8})  # orientations that turn a picture by a quarter: width and height swap
# Formats every stage decodes; Pillow opens more (TIFF), left out on purpose.
DECODABLE_IMAGES = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
# A decoded image whose pixels all lie within this many levels (of 255) of one another is blank.
BLANK_SPREAD = 2


def read_image(
    path: str, *, channels: int, background: Background | None = WHITE, draft: int | None = None
) -> Image.Image:
    """The image in mode "L" (channels 1) or "RGB" (channels 3), as it looks on a page.

    Args:
        background: what transparent pixels are composited onto; None reads the file as the
            releases before 0.2 did, for the models they trained (their preprocessors and
            references say so by lacking a background): transparency dropped, no EXIF
            rotation, JPEGs decoded whole.
        draft: a JPEG may be decoded at a reduced size no smaller than draft x draft, for a
            model input or a thumbnail that is smaller anyway; other formats decode whole.

    Raises:
        OSError, ValueError, SyntaxError, Image.DecompressionBombError: the file is no readable image.
    """
    legacy = background is None  # read exactly as before 0.2: whole, and as stored
    with Image.open(path) as image:
        if draft and image.format == "JPEG" and not legacy:
            image.draft(image.mode, (draft, draft))  # libjpeg scales by 1/2, 1/4 or 1/8 while decoding
        image.seek(0)  # an animation's first frame
        image.load()
        if not legacy and image.getexif().get(ORIENTATION, 1) != 1:
            image = ImageOps.exif_transpose(image)  # upright, as a viewer shows it
        return flatten(image, channels=channels, background=background)


def flatten(image: Image.Image, *, channels: int, background: Background | None = WHITE) -> Image.Image:
    """Any Pillow image as "L" or "RGB": wide grayscale scaled to 8 bits, transparency composited."""
    if image.mode in WIDE_GRAYSCALE:
        image = _eight_bit(image)
    if background is not None and has_transparency(image):
        rgba = image.convert("RGBA")  # applies a palette's or a colour's tRNS transparency too
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (*background, 255)), rgba)
    mode = "L" if channels == 1 else "RGB"
    if image.mode == mode:
        return image
    with warnings.catch_warnings():  # the old reading drops transparency on purpose; Pillow warns
        warnings.simplefilter("ignore", UserWarning)
        return image.convert(mode)


def has_transparency(image: Image.Image) -> bool:
    return image.mode in ALPHA_MODES or "transparency" in image.info


def is_grayscale(image: Image.Image) -> bool:
    """Stored without colour: such images train a one-channel model."""
    return image.mode in GRAYSCALE_MODES


def image_array(
    path: str, *, channels: int, background: Background | None = WHITE, draft: int | None = None
) -> np.ndarray:
    """`read_image` as uint8 pixels, (height, width, channels)."""
    pixels = np.asarray(read_image(path, channels=channels, background=background, draft=draft), dtype=np.uint8)
    return pixels.reshape(pixels.shape[0], pixels.shape[1], channels)


def is_blank(image: Image.Image) -> bool:
    """Every pixel within BLANK_SPREAD levels of the others: nothing a model could learn from."""
    low, high = image.convert("L").getextrema()
    return high - low <= BLANK_SPREAD


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit grayscale as 8-bit "L": Pillow's own convert clips them at 255 instead.

    A 16-bit mode always spans 0-65535, so a dark scan stays dark; only "I" and "F", whose
    writers use several ranges, are scaled by what their pixels reach.
    """
    pixels = np.asarray(image, dtype=np.float64)
    top = pixels.max(initial=0.0)
    if image.mode.startswith("I;16") or top > 255:
        scale = 255.0 / 65535.0  # 16-bit pixels (stored as 16-bit, or as 32-bit "I" by some writers)
    elif image.mode == "F" and top <= 1.0:
        scale = 255.0  # floating-point pixels in [0, 1]
    else:
        scale = 1.0  # already within 8 bits
    # A 16-bit image's one transparent colour (tRNS) is dropped with its 16 bits: it is rare.
    return Image.fromarray(np.clip(np.rint(pixels * scale), 0, 255).astype(np.uint8))


def header_size(path, *, upright: bool = True) -> tuple[int, int]:
    """(width, height) as read_image will return the picture, from the file's header alone.

    Pillow's open reads the header, not the pixels: a 12000 x 12000 PNG costs a millisecond here
    and 432 MB decoded. upright: swap the sides when EXIF turns the picture by a quarter.

    Raises:
        OSError, ValueError, SyntaxError, Image.DecompressionBombError: the file is no readable image.
    """
    with Image.open(path) as image:
        width, height = image.size
        turned = upright and _header_orientation(image) in TURNED
    return (height, width) if turned else (width, height)


def _header_orientation(image: Image.Image) -> int:
    # A PNG's EXIF chunk may follow its pixels, and Pillow decodes them all to find it: such a
    # file is counted unturned (rare, and one of a sample moves no median).
    if image.format == "PNG" and "exif" not in image.info:
        return 1
    return image.getexif().get(ORIENTATION, 1)


def pixel_limit() -> int:
    """The most pixels Pillow opens (twice Image.MAX_IMAGE_PIXELS); more is a decompression bomb."""
    return 2 * Image.MAX_IMAGE_PIXELS


def file_problem(path, max_bytes: int | None = None, root: str = "") -> str | None:
    """Why `path` is no file to read as an image, found without reading it: "outside" (its real
    path, links resolved, is not inside `root`, when one is given: `[dataset] image_root`),
    "missing", "special" (a device, FIFO or socket: a read could block or never end), "too
    large", or "unreadable"; None for a regular file within max_bytes (default MAX_IMAGE_BYTES,
    looked up when called: `[FitPreprocessor] max_image_bytes` reaches here through validation)."""
    if root and not inside(path, root):
        return "outside"
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "missing"
    except (OSError, TypeError, ValueError):
        return "unreadable"
    if not stat.S_ISREG(info.st_mode):
        return "special"
    limit = MAX_IMAGE_BYTES if max_bytes is None else max_bytes
    return "too large" if info.st_size > limit else None


def inside(path, root: str) -> bool:
    """Whether `path`, every link and `..` resolved, lies in the folder `root` (resolved too)."""
    try:
        real, folder = os.path.realpath(path), os.path.realpath(root)
    except (OSError, TypeError, ValueError):
        return False
    return os.path.commonpath([real, folder]) == folder


def check_decodable(path) -> None:
    """Raises when the file is no image every stage decodes; cheap for everything but JPEG (validation)."""
    with Image.open(path) as image:
        if image.format not in DECODABLE_IMAGES:
            raise ValueError(f"{image.format} is not decoded by TensorFlow")
        if image.format == "JPEG":
            # verify() passes a truncated JPEG that TensorFlow then fails on: decode it, at 1/8
            # scale (draft), which still reads every byte of the compressed data.
            image.draft(image.mode, (1, 1))
            image.load()
        else:
            image.verify()  # checks the file's structure (PNG: every chunk's CRC) without decoding
