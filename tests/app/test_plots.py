import numpy as np

from app.plots import FieldPlot, rasterize, shared_mapper


def test_large_fields_are_rasterized_to_the_figure_as_block_means():
    field = np.random.default_rng(0).standard_normal((600, 600)).astype(np.float32)
    np.testing.assert_allclose(rasterize(field, 300), field.reshape(300, 2, 300, 2).mean((1, 3)), atol=1e-6)
    plot = FieldPlot("f", shared_mapper(1.0), size=300)
    plot.update(field)
    assert plot.source.data["image"][0].shape == (300, 300)
    plot.update(field[:64, :64])  # small fields go as they are
    assert plot.source.data["image"][0].shape == (64, 64)
