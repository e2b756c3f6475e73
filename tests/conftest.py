"""Shared fixtures. The test machines have no network: data comes from data/ (see data/README.md)."""

from pathlib import Path

import pytest

from helpers.data import fetch_the_verdict

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def verdict_text() -> str:
    return fetch_the_verdict(ROOT / "data").read_text(encoding="utf-8")
