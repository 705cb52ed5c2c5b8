"""Shared tiny fixtures for the unit tests: small CSV files and PNG images in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image


def write_png(path: Path, color=(255, 0, 0), size=(8, 8), mode="RGB") -> Path:
    """A small solid-colour PNG; distinct colours give distinct bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path, format="PNG")
    return path


@pytest.fixture
def csv_file(tmp_path):
    """Write a CSV file under tmp_path from text: csv_file("name.csv", "a,b\\n1,2\\n")."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return write


@pytest.fixture
def png():
    """Write a small PNG: png(path, color=(r, g, b))."""
    return write_png


@pytest.fixture
def image_folder(tmp_path):
    """An image folder in the Keras layout: two classes, two images each, unique stems."""
    root = tmp_path / "images"
    write_png(root / "cat" / "c1.png", (255, 0, 0))
    write_png(root / "cat" / "c2.png", (250, 0, 0))
    write_png(root / "dog" / "d1.png", (0, 255, 0))
    write_png(root / "dog" / "d2.png", (0, 250, 0))
    return root
