"""Factories of training and qualification: training records written
directly (no rule checks), for tests that need a user already trained.
Tests of granting itself go through ``booking.services.training``."""

from __future__ import annotations

import pytest

from booking.domain import clock
from booking.models.catalog import TrainingRecord


def create_training(
    session, user, *, resource=None, category=None, provider=None, granted_by=None, **fields
) -> TrainingRecord:
    """A current training of ``user`` on ``resource`` (granted by its lab)
    or on ``category`` (granted by ``provider``)."""
    provider_id = (
        provider.id if provider is not None else resource.provider_id if resource else None
    )
    record = TrainingRecord(
        user_id=user.id,
        resource_id=resource.id if resource is not None else None,
        category_id=category.id if category is not None else None,
        provider_id=provider_id,
        granted_by_id=granted_by.id if granted_by is not None else None,
        granted_at=fields.pop("granted_at", clock.now()),
        **fields,
    )
    session.add(record)
    session.flush()
    return record


@pytest.fixture
def make_training(session):
    """``make_training(user, resource=..., category=..., provider=..., valid_until=...)``."""
    return lambda user, **kw: create_training(session, user, **kw)
