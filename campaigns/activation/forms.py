from django import forms
from django.utils.translation import gettext_lazy as _

from campaigns.activation.models import SUBSCRIBABLE, EventType
from lifecycle.models import LifecycleModel


class DestinationForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    url = forms.URLField(
        label=_("Address"), max_length=2000, assume_scheme="https", help_text=_("Where CLM posts the events (https)")
    )
    event_types = forms.MultipleChoiceField(
        label=_("Events"),
        choices=[(value, EventType(value).label) for value in SUBSCRIBABLE],
        widget=forms.CheckboxSelectMultiple,
        initial=list(SUBSCRIBABLE),
    )
    lifecycle_models = forms.ModelMultipleChoiceField(
        label=_("Lifecycle models"),
        queryset=LifecycleModel.objects.order_by("key"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Stage changes of these models; none chosen: of every model"),
    )
