import pytest
import torch

import opt4gptq  # noqa: F401  (loads the extension once for every test module)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA GPU visible: the ops run on CUDA only")
    for item in items:
        item.add_marker(skip)
