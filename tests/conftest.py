import os
import sys

import pytest

# Tests run against the installed package, or against a development build in python/.
sys.path.insert(0, os.path.join(os.path.dirname(__file__)))


def pytest_configure(config):
    config.addinivalue_line("markers", "torch: compares with PyTorch (skipped without torch unless NEUROCORE_REQUIRE_TORCH=1)")
    config.addinivalue_line("markers", "slow: trains a model on real data")
