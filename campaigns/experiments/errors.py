"""What an experiment's state refuses: `str()` of each is a message for the caller."""


class ExperimentError(Exception):
    """A request the experiment's state does not allow; `str()` is a message for the caller."""


class ExperimentStateError(ExperimentError):
    """Start/stop/assign in the wrong status (e.g. stopping a draft, assigning before the start)."""


class ExperimentStopped(ExperimentError):
    """A stopped experiment was asked about a customer it never exposed: no new exposures after the stop."""


class CustomerIneligible(ExperimentError):
    """The customer is not in the experiment's population (stage, channel)."""
