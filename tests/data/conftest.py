"""Fixtures for the data tests: every test gets private data/cache folders via the env vars."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_data_env(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SPIKEFORGE_DATA", str(tmp_path_factory.mktemp("sf_data")))
    monkeypatch.setenv("SPIKEFORGE_CACHE", str(tmp_path_factory.mktemp("sf_cache")))
