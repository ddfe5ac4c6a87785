from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ActivationConfig(AppConfig):
    """What CLM knows, sent to where marketing acts (issue 17): destinations, and the deliveries of stage changes to
    them, written in the transaction that records the change. A part of `campaigns` with tables of its own."""

    name = "campaigns.activation"
    label = "activation"
    verbose_name = _("Activation")

    def ready(self) -> None:
        from campaigns.activation.outbox import stage_changes_queue
        from lifecycle.services import transitions_hook_register

        transitions_hook_register(stage_changes_queue)
