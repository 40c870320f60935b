import numpy as np
import pytest
import torch

from engine.animation import RDBU, colourize, frames, write_animation
from engine.config import RolloutConfig
from engine.errors import EngineError
from engine.pipelines.rollout import rollout_dataset, truth_frames
from engine.rollout import rollout


def test_the_diverging_scale_maps_its_ends_and_zero_and_greys_missing_truth():
    rgb = colourize(np.array([[-2.0, -1.0, 0.0, 1.0, 5.0, np.nan]]), limit=1.0)
    np.testing.assert_array_equal(rgb[0, :2], [RDBU[0], RDBU[0]])  # at and below −limit: the darkest blue
    np.testing.assert_array_equal(rgb[0, 2], RDBU[5])  # zero: the palette's white middle
    np.testing.assert_array_equal(rgb[0, 3:5], [RDBU[-1], RDBU[-1]])
    np.testing.assert_array_equal(rgb[0, 5], [160, 160, 160])


def test_truth_frames_follow_the_saved_steps_and_end_in_nan():
    trajectories = torch.arange(2 * 5 * 4.0).reshape(2, 5, 2, 2)
    config = RolloutConfig(initial_conditions=2, start=1)
    out = truth_frames(trajectories, [0, 1, 2, 4], config, lead=1)  # index 1 + 4 = 5: past the 5 snapshots
    torch.testing.assert_close(out[:, :3], trajectories[:, 1:4])
    assert torch.isnan(out[:, 3]).all()


def _rollout_dataset(truth: bool):
    config = RolloutConfig(steps=6, members=2, save_every=2)
    start = torch.randn(2, 8, 8, generator=torch.Generator().manual_seed(0))
    result = rollout(lambda x: torch.roll(x, 1, -1), start, config, data_std=1.0)
    frames_ = truth_frames(start[:1, None].repeat(1, 3, 1, 1), result.saved_steps, config, 1) if truth else None
    return rollout_dataset(result, dt=0.5, variable="vorticity", config=config, truth=frames_)


def test_frames_put_truth_beside_the_emulator_on_one_scale():
    from engine.animation import rollout_panels

    panels, titles, times = rollout_panels(_rollout_dataset(truth=True))
    assert titles == ["truth", "emulator"] and list(times) == [0, 1, 2, 3]
    images = frames(panels, titles, times, scale=3)
    assert images.shape == (4, 14 + 24, 24 + 4 + 24, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[0, 14:, :24], images[0, 14:, 28:])  # step 0: the emulator starts at the truth
    assert (images[-1, 14:, :24] == 160).all()  # past the test data: grey


def test_write_animation_checks_its_arguments_and_leaves_no_partial_file(tmp_path):
    ds = _rollout_dataset(truth=False)
    with pytest.raises(EngineError, match="use one of"):
        write_animation(ds, tmp_path / "a.webm")
    with pytest.raises(EngineError, match="fps"):
        write_animation(ds, tmp_path / "a.gif", fps=0)
    path = write_animation(ds, tmp_path / "a.gif", scale=1)
    assert path.read_bytes()[:6] == b"GIF89a" and sorted(p.name for p in tmp_path.iterdir()) == ["a.gif"]
