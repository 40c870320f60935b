import pytest
import torch

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))  # what CI has


@pytest.fixture(autouse=True, scope="session")
def private_data_folder(tmp_path_factory):
    """Tests never write to the user's data folder: the default one is a temporary folder."""
    patch = pytest.MonkeyPatch()
    patch.setenv("EMULATOR_STUDIO_DATA", str(tmp_path_factory.mktemp("default-data")))
    yield
    patch.undo()
