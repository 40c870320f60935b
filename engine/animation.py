"""Rollout animations: GIF (Pillow, always available) or MP4 (an ffmpeg executable: ``imageio-ffmpeg``'s or one on
PATH) of the emulated field beside the truth, one frame per saved step, on one fixed diverging colour scale.

``write_animation(rollout, path)`` takes a rollout dataset (``engine.pipelines.rollout.rollout_dataset``: member 0 of
``{variable}`` and, when present, ``{variable}_truth`` of its trajectory).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import xarray as xr
from PIL import Image, ImageDraw

from engine.errors import EngineError
from engine.files import disk_errors, scratch

# Colorbrewer RdBu, blue (negative) to red (positive), as in the dashboard
RDBU = np.array([[5, 48, 97], [33, 102, 172], [67, 147, 195], [146, 197, 222], [209, 229, 240], [247, 247, 247],
                 [253, 219, 199], [244, 165, 130], [214, 96, 77], [178, 24, 43], [103, 0, 31]], dtype=np.float64)
GAP = 4  # white pixels between panels
CAPTION = 14  # pixel rows of the caption line above the panels
FORMATS = (".gif", ".mp4")


def colourize(field: np.ndarray, limit: float) -> np.ndarray:
    """(h, w) values → (h, w, 3) uint8 on the diverging scale [−limit, limit]; NaN (no truth there) is grey."""
    position = np.clip((np.nan_to_num(field) / limit + 1) / 2, 0, 1) * (len(RDBU) - 1)
    below = np.floor(position).astype(int).clip(0, len(RDBU) - 2)
    weight = (position - below)[..., None]
    rgb = (1 - weight) * RDBU[below] + weight * RDBU[below + 1]
    rgb[np.isnan(field)] = 160
    return rgb.round().astype(np.uint8)


def emulated_fields(rollout: xr.Dataset) -> list[str]:
    """The fields of a rollout's state: its variables with dims (member, time, y, x), in file order."""
    return [str(v) for v, da in rollout.data_vars.items() if da.dims == ("member", "time", "y", "x")]


def rollout_panels(rollout: xr.Dataset, variable: str | None = None) -> tuple[list[np.ndarray], list[str], np.ndarray]:
    """(time, n, n) arrays of member 0 and, when stored, the truth of its trajectory; their titles; the times."""
    emulated = emulated_fields(rollout)
    if variable is None and not emulated:
        raise EngineError("not a rollout: no variable with dims (member, time, y, x); write one with `rollout --out`")
    name = variable or emulated[0]
    if name not in rollout.data_vars:
        raise EngineError(f"the rollout has no variable '{name}'; it has {sorted(rollout.data_vars)}")
    panels, titles = [np.asarray(rollout[name].isel(member=0).values, np.float32)], ["emulator"]
    truth = f"{name}_truth"
    if truth in rollout.data_vars:
        trajectory = int(rollout["initial_condition"].values[0])
        panels.insert(0, np.asarray(rollout[truth].isel(trajectory=trajectory).values, np.float32))
        titles.insert(0, "truth")
    return panels, titles, np.asarray(rollout["time"].values, np.float64)


def frames(panels: list[np.ndarray], titles: list[str], times: np.ndarray, scale: int = 4) -> np.ndarray:
    """(time, H, W, 3) uint8: the panels side by side under a caption line (titles, model time), each pixel
    ``scale``×``scale``, on one colour range (±3 standard deviations of the first panel's finite values)."""
    reference = panels[0][np.isfinite(panels[0])]
    if reference.size == 0:
        raise EngineError("nothing to animate: the rollout has no finite values")
    mean, limit = float(reference.mean()), 3 * float(reference.std()) or 1.0
    coloured = [colourize(p - mean, limit).repeat(scale, 1).repeat(scale, 2) for p in panels]
    count, height, width, _ = coloured[0].shape
    gap = np.full((count, height, GAP, 3), 255, np.uint8)
    body = np.concatenate([piece for c in coloured for piece in (c, gap)][:-1], axis=2)
    header = np.full((count, CAPTION, body.shape[2], 3), 255, np.uint8)
    for index in range(count):
        header[index] = caption(body.shape[2], [(i * (width + GAP), title) for i, title in enumerate(titles)],
                                f"t = {times[index]:.2f}")
    return np.concatenate([header, body], axis=1)


def animation_frames(rollout: xr.Dataset, variable: str | None = None, scale: int = 4) -> np.ndarray:
    """``frames`` of the field ``variable``, else one row per field of the rollout's state (the QG jet's two
    layers), each on its own colour range and captioned with its name."""
    names = [variable] if variable else emulated_fields(rollout) or [None]
    rows = []
    for name in names:
        panels, titles, times = rollout_panels(rollout, name)
        rows.append(frames(panels, [f"{title}: {name}" for title in titles] if len(names) > 1 else titles, times,
                           scale))
    return np.concatenate(rows, axis=1)


def caption(width: int, labels: list[tuple[int, str]], right: str) -> np.ndarray:
    """A white (CAPTION, width, 3) strip with each label at its x offset and ``right`` at the right edge."""
    strip = Image.new("RGB", (width, CAPTION), "white")
    draw = ImageDraw.Draw(strip)
    for x, label in labels:
        draw.text((x + 2, 2), label, fill="black")
    draw.text((width - 6 * len(right) - 2, 2), right, fill="black")
    return np.asarray(strip)


def ffmpeg_executable() -> str | None:
    """imageio-ffmpeg's bundled binary (``pip install emulator-studio[video]``), else ``ffmpeg`` on PATH."""
    try:  # an optional dependency (the video extra): imported only when an MP4 is asked for
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return shutil.which("ffmpeg")


def write_gif(images: np.ndarray, path: Path, fps: float) -> None:
    pictures = [Image.fromarray(image) for image in images]
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=round(1000 / fps), loop=0,
                     optimize=False)


def write_mp4(images: np.ndarray, path: Path, fps: float) -> None:
    """H.264 through ffmpeg's stdin (raw RGB frames); even sizes, as yuv420p requires."""
    executable = ffmpeg_executable()
    if executable is None:
        raise EngineError("MP4 needs an ffmpeg encoder: pip install imageio-ffmpeg (or install ffmpeg), or write .gif")
    images = images[:, : images.shape[1] // 2 * 2, : images.shape[2] // 2 * 2]
    _, height, width, _ = images.shape
    command = [executable, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
               "-r", f"{fps}", "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)]
    done = subprocess.run(command, input=np.ascontiguousarray(images).tobytes(), capture_output=True)
    if done.returncode != 0:
        raise EngineError(f"ffmpeg failed: {done.stderr.decode(errors='replace').strip()[-300:]}")


def write_animation(rollout: xr.Dataset, path: str | Path, fps: float = 10.0, scale: int = 4,
                    variable: str | None = None) -> Path:
    """Write the rollout's animation to ``path`` (.gif or .mp4, by suffix): the field ``variable``, else every field
    of its state, one row each; the file appears whole or not at all."""
    path = Path(path)
    if path.suffix not in FORMATS:
        raise EngineError(f"animation format '{path.suffix}' unknown: use one of {', '.join(FORMATS)}")
    if not 0 < fps <= 60:
        raise EngineError(f"fps must be in (0, 60], got {fps}")
    if not 1 <= scale <= 16:
        raise EngineError(f"scale must be in [1, 16], got {scale}")
    images = animation_frames(rollout, variable, scale)
    with disk_errors(path), scratch(path) as partial:  # the temporary keeps the suffix the writer goes by
        (write_gif if path.suffix == ".gif" else write_mp4)(images, partial, fps)
        os.replace(partial, path)
    return path
