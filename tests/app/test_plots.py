import numpy as np

from app.plots import FieldPlot, rasterize, shared_mapper


def test_large_fields_are_rasterized_to_the_figure_as_block_means():
    field = np.random.default_rng(0).standard_normal((600, 600)).astype(np.float32)
    np.testing.assert_allclose(rasterize(field, 300), field.reshape(300, 2, 300, 2).mean((1, 3)), atol=1e-6)
    plot = FieldPlot("f", shared_mapper(1.0), size=300)  # 300 px wide, growing with its row to 480
    assert plot.figure.max_width == plot.pixels == 480
    wide = np.random.default_rng(1).standard_normal((960, 960)).astype(np.float32)
    plot.update(wide)
    np.testing.assert_allclose(plot.source.data["image"][0], wide.reshape(480, 2, 480, 2).mean((1, 3)), atol=1e-6)
    plot.update(field[:400, :400])  # fields the figure can show pixel for pixel go as they are
    assert plot.source.data["image"][0].shape == (400, 400)
