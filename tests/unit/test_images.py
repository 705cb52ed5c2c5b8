"""Unit tests for pipeline/stages/images.py: every file decodes to the picture a person sees."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.stages.images import flatten, header_size, image_array, is_blank, parse_background, read_image

SIDE = 16


def _shape_mask() -> np.ndarray:
    """A filled square in the middle: True where the shape is."""
    mask = np.zeros((SIDE, SIDE), bool)
    mask[4:12, 6:14] = True
    return mask


def _write_alpha_only(path, mode: str):
    """The shape lives only in transparency: every colour value is 0 (black), as in symbolic icons."""
    alpha = np.where(_shape_mask(), 255, 0).astype(np.uint8)
    black = np.zeros((SIDE, SIDE), np.uint8)
    if mode == "RGBA":
        Image.fromarray(np.dstack([black, black, black, alpha]), "RGBA").save(path)
    elif mode == "LA":
        Image.fromarray(np.dstack([black, alpha]), "LA").save(path)
    elif mode in ("P", "GIF"):
        palette = Image.fromarray(_shape_mask().astype(np.uint8), "P")
        palette.putpalette([0, 0, 0, 0, 0, 0])  # both colours black: only transparency tells them apart
        palette.save(path, transparency=0)
    elif mode == "WEBP":
        Image.fromarray(np.dstack([black, black, black, alpha]), "RGBA").save(path, lossless=True)
    return path


@pytest.mark.parametrize(
    ("mode", "name"), [("RGBA", "a.png"), ("LA", "a.png"), ("P", "a.png"), ("GIF", "a.gif"), ("WEBP", "a.webp")]
)
def test_a_shape_drawn_only_in_transparency_is_visible_on_white(tmp_path, mode, name):
    path = _write_alpha_only(tmp_path / name, mode)
    pixels = image_array(str(path), channels=1)[..., 0]
    assert (pixels[_shape_mask()] == 0).all()  # the black shape
    assert (pixels[~_shape_mask()] == 255).all()  # on the white background
    rgb = image_array(str(path), channels=3)
    assert rgb.shape == (SIDE, SIDE, 3) and (rgb[~_shape_mask()] == 255).all()


def test_a_configured_background_and_the_old_reading_that_dropped_transparency(tmp_path):
    path = _write_alpha_only(tmp_path / "a.png", "RGBA")
    on_red = image_array(str(path), channels=3, background=parse_background("#ff0000"))
    assert on_red[0, 0].tolist() == [255, 0, 0] and on_red[8, 8].tolist() == [0, 0, 0]
    dropped = read_image(str(path), channels=1, background=None)  # releases before 0.2
    assert is_blank(dropped) and not is_blank(read_image(str(path), channels=1))


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    ramp = (np.arange(SIDE * SIDE, dtype=np.uint32).reshape(SIDE, SIDE) * 257).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    pixels = image_array(str(tmp_path / "deep.png"), channels=1)[..., 0]
    assert pixels[0, 0] == 0 and pixels[-1, -1] == 255 and len(np.unique(pixels)) == 256


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "print.jpg")  # pure red in ink
    red, green, blue = image_array(str(tmp_path / "print.jpg"), channels=3)[4, 4].tolist()
    assert red > 200 and green < 60 and blue < 60


def test_exif_orientation_turns_a_photo_upright(tmp_path):
    upright = np.zeros((12, 20), np.uint8)  # wider than tall, a bright band at the top
    upright[:3] = 255
    stored = Image.fromarray(np.rot90(upright, k=1))  # stored turned a quarter, 20 tall
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to view"
    stored.save(tmp_path / "turned.jpg", exif=exif, quality=95)
    pixels = image_array(str(tmp_path / "turned.jpg"), channels=1)[..., 0]
    assert pixels.shape == (12, 20)
    assert pixels[:3].mean() > 200 and pixels[4:].mean() < 50
    # The header alone says the same (width, height), for the input size chosen from the data.
    assert header_size(tmp_path / "turned.jpg") == (20, 12)
    assert header_size(tmp_path / "turned.jpg", upright=False) == (12, 20)  # the reading before 0.2


def test_animation_is_read_as_its_first_frame(tmp_path):
    frames = [Image.new("L", (8, 8), 255), Image.new("L", (8, 8), 0)]
    frames[0].save(tmp_path / "blink.gif", save_all=True, append_images=frames[1:])
    assert (image_array(str(tmp_path / "blink.gif"), channels=1) == 255).all()


def test_a_bad_background_names_the_setting():
    assert parse_background("") == (255, 255, 255) and parse_background("black") == (0, 0, 0)
    with pytest.raises(ValueError, match=r"\[FitPreprocessor\] image_background: 'mauvish'"):
        parse_background("mauvish")


def test_a_dark_sixteen_bit_scan_stays_dark():
    dark = Image.fromarray(np.full((SIDE, SIDE), 1000, np.uint16))  # 1.5% of the 16-bit range
    assert np.asarray(flatten(dark, channels=1)).max() == 4


def test_the_old_reading_keeps_a_file_as_stored(tmp_path):
    stored = Image.fromarray(np.zeros((20, 12), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "turned.jpg", exif=exif)
    assert image_array(str(tmp_path / "turned.jpg"), channels=1).shape == (12, 20, 1)
    assert image_array(str(tmp_path / "turned.jpg"), channels=1, background=None).shape == (20, 12, 1)
