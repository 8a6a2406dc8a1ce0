"""Shared test set-up: a private data cache, a non-interactive matplotlib backend, one torch thread."""

from __future__ import annotations

import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _private_data_dir(tmp_path_factory):
    """Generated and 'downloaded' data go to a temporary folder, never to the user's cache."""
    old = os.environ.get("DLCORE_DATA")
    os.environ["DLCORE_DATA"] = str(tmp_path_factory.mktemp("dlcore_data"))
    yield
    if old is None:
        os.environ.pop("DLCORE_DATA", None)
    else:
        os.environ["DLCORE_DATA"] = old


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
