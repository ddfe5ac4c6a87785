"""What every app's page forms share."""

from django import forms
from django.core.exceptions import ValidationError


def errors_add(form: forms.BaseForm, error: ValidationError, *, skip: tuple[str, ...] = ()) -> None:
    """Put a service's errors on the form: under the field when the form has it, else above the form (fields in
    `skip` are shown elsewhere by the caller)."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error.messages)
        return
    for field, texts in error.message_dict.items():
        if field not in skip:
            form.add_error(field if field in form.fields else None, texts)
