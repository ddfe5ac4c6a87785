import pytest

from lifecycle.models import LifecycleModel


@pytest.fixture
def status_model(db) -> LifecycleModel:
    """The `status` model that migrate installs as the default."""
    return LifecycleModel.objects.get(key="status")
