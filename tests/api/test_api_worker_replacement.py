"""UpdateEnvironment's WorkerReplacementStrategy on the wire: an unknown value is the modeled
ValidationException, in AWS's words, and nothing about the environment changes."""

from __future__ import annotations

import pytest

from openmwaa.store.environments import EnvironmentKey
from tests.api.conftest import ACCOUNT, REGION, ApiServer


@pytest.mark.parametrize("value", ["graceful", "SOFT", ""])
def test_an_unknown_strategy_is_a_validation_exception(api: ApiServer, value: str) -> None:
    key = EnvironmentKey(ACCOUNT, REGION, "avail")
    before = api.services.repository.get(key)
    mwaa = api.client()
    with pytest.raises(mwaa.exceptions.ValidationException) as exc:
        mwaa.update_environment(Name="avail", MaxWorkers=2, WorkerReplacementStrategy=value)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert exc.value.response["Error"]["Message"] == (
        f"1 validation error detected: Value '{value}' at 'workerReplacementStrategy' failed to satisfy "
        "constraint: Member must satisfy enum value set: [FORCED, GRACEFUL]"
    )
    assert api.services.repository.get(key) == before
