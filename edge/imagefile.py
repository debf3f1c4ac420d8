"""Reading one image file, with the reason in words when it is not a usable image.

`predict` and the `file:`/`dir:` sources both read image files; this is their one reader,
so a user sees the same reason ("empty file (0 bytes)", "no such file", ...) from both.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt


class ImageError(Exception):
    """The file is not a usable image; the message is the reason, without the path."""


def read_image(path: Path) -> npt.NDArray[np.uint8]:
    """The image as BGR uint8, or ImageError saying what is wrong with the file."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except IsADirectoryError:
        raise ImageError("is a folder, not an image") from None
    except OSError as exc:
        raise ImageError(f"cannot read: {exc.strerror}") from None
    if data.size == 0:
        raise ImageError("empty file (0 bytes)")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError("not an image OpenCV can read (corrupt, truncated or unsupported format)")
    return np.asarray(image, dtype=np.uint8)
