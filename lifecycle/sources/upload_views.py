"""The upload pages (admins only): /imports/ to upload a CSV file, /imports/<id>/ for its layout, preview, import and
progress. The services are in lifecycle.sources.uploads; the file is streamed to disk as it arrives."""

from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.files.uploadhandler import FileUploadHandler, StopUpload, TemporaryFileUploadHandler
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clm.base.forms import errors_add
from lifecycle.ingest import INGEST_KINDS
from lifecycle.pages import page_context
from lifecycle.sources.exports.layouts import layout_get, platform_label
from lifecycle.sources.models import Source, Upload, UploadMode
from lifecycle.sources.uploads import (
    UploadRefused,
    csv_source_create,
    upload_discard,
    upload_import_queue,
    upload_mapping_set,
    upload_progress,
    upload_source_set,
    upload_store,
)
from lifecycle.sources.views import admin_required

RECENT_UPLOADS = 20


def _too_large(size: int) -> str:
    limit = settings.CLM_UPLOAD_MAX_BYTES
    return _("This upload is %(size)s; files up to %(limit)s are taken (CLM_UPLOAD_MAX_BYTES).") % {
        "size": filesizeformat(size),
        "limit": filesizeformat(limit),
    }


class UploadLimitHandler(FileUploadHandler):
    """Counts the bytes as they arrive and stops the upload once past the limit (a client may send no
    Content-Length, or a wrong one). The view refuses a declared length over the limit before reading anything."""

    def __init__(self, request: HttpRequest, limit: int) -> None:
        super().__init__(request)
        self.limit, self.received, self.refused = limit, 0, False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.refused = True
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler (TemporaryFileUploadHandler) makes the file


class UploadForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("CSV file"))
    source = forms.ModelChoiceField(
        label=gettext_lazy("Shop"),
        queryset=Source.objects.all(),
        required=False,
        empty_label=gettext_lazy("— detect from the file (CLM's own columns need no shop)"),
        help_text=gettext_lazy("The shop a platform's export is of: its currency, completed statuses and ids"),
    )
    timezone = forms.CharField(
        label=gettext_lazy("Time zone of the shop"),
        initial="UTC",
        max_length=64,
        help_text=gettext_lazy("WooCommerce writes times without an offset: give the site's, e.g. Europe/Berlin"),
    )


class SourceForm(forms.Form):
    """Which shop a platform export is of: a connected one, or a new CSV-only source."""

    source = forms.ModelChoiceField(label=gettext_lazy("Shop"), queryset=Source.objects.none(), required=False)
    new_name = forms.CharField(label=gettext_lazy("or a new CSV-only shop: name"), required=False, max_length=100)
    new_currency = forms.CharField(label=gettext_lazy("its currency"), required=False, max_length=3)
    new_id_prefix = forms.CharField(label=gettext_lazy("its id prefix"), required=False, max_length=20)
    timezone = forms.CharField(label=gettext_lazy("Time zone of the shop"), max_length=64)

    def __init__(self, *args: Any, platform: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["source"].queryset = Source.objects.filter(platform=platform)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("source") and not data.get("new_name"):
            raise ValidationError(_("Choose the shop, or name a new CSV-only one with its currency."))
        return data


class MappingForm(forms.Form):
    """For a file of unknown layout: which of CLM's kinds it holds, and the file's column for each field."""

    def __init__(self, *args: Any, kind: str, header: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        kinds = [(name, name) for name in sorted(INGEST_KINDS)]
        self.fields["kind"] = forms.ChoiceField(label=_("The file holds"), choices=kinds, initial=kind)
        columns = [("", "—"), *((column, column) for column in header)]
        by_name = {column.strip().lower().replace(" ", "_"): column for column in header}
        required = set(INGEST_KINDS[kind].required_columns())
        for name in INGEST_KINDS[kind].csv_columns():
            self.fields[f"field_{name}"] = forms.ChoiceField(
                label=name, choices=columns, required=name in required, initial=by_name.get(name, "")
            )

    def columns(self) -> dict[str, str]:
        return {
            name.removeprefix("field_"): value
            for name, value in self.cleaned_data.items()
            if name.startswith("field_") and value
        }


class ImportForm(forms.Form):
    mode = forms.ChoiceField(
        label=gettext_lazy("Import"), choices=UploadMode.choices, initial=UploadMode.ATOMIC, widget=forms.RadioSelect
    )


_FORM_NAMES = {SourceForm: "source_form", MappingForm: "mapping_form", ImportForm: "import_form"}


def _list_page(request: HttpRequest, form: UploadForm, *, error: str = "", status: int = 200) -> HttpResponse:
    context = page_context(request, None, "source-list")
    uploads = [
        (upload, layout_get(upload.layout))
        for upload in Upload.objects.select_related("source", "created_by")[:RECENT_UPLOADS]
    ]
    context.update({"form": form, "uploads": uploads, "error": error, "limit": settings.CLM_UPLOAD_MAX_BYTES})
    return render(request, "sources/upload_list.html", context, status=status)


@csrf_exempt  # the upload handlers must be set before the CSRF check reads the body: checked in _upload_list
@require_http_methods(["GET", "POST"])
def upload_list(request: HttpRequest) -> HttpResponse:
    admin_required(request)
    limiter = None
    if request.method == "POST":
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > settings.CLM_UPLOAD_MAX_BYTES:  # refused before a byte of the body is read
            return _list_page(request, UploadForm(), error=_too_large(declared), status=413)
        limiter = UploadLimitHandler(request, settings.CLM_UPLOAD_MAX_BYTES)
        # On disk as it arrives, never in memory whole.
        request.upload_handlers = [limiter, TemporaryFileUploadHandler(request)]
    return _upload_list(request, limiter)


@csrf_protect
def _upload_list(request: HttpRequest, limiter: UploadLimitHandler | None) -> HttpResponse:
    if request.method != "POST" or limiter is None:
        return _list_page(request, UploadForm(initial={"timezone": settings.TIME_ZONE}))
    form = UploadForm(request.POST, request.FILES)
    if limiter.refused:
        return _list_page(request, UploadForm(), error=_too_large(limiter.received), status=413)
    if not form.is_valid():
        return _list_page(request, form, status=400)
    try:
        upload = upload_store(
            file=form.cleaned_data["file"],
            source=form.cleaned_data["source"],
            zone=form.cleaned_data["timezone"],
            actor=request.user,
        )
    except UploadRefused as exc:
        message = _("Nothing was imported: %(reason)s.") % {"reason": exc}
        return _list_page(request, form, error=message, status=400)
    except ValidationError as exc:
        errors_add(form, exc)
        return _list_page(request, form, status=400)
    return redirect("upload-detail", upload.pk)


def _upload_or_404(upload_id: int) -> Upload:
    return get_object_or_404(Upload.objects.select_related("source", "created_by"), pk=upload_id)


def _detail_page(request: HttpRequest, upload: Upload, *, status: int = 200, **forms_: Any) -> HttpResponse:
    layout = layout_get(upload.layout)
    source_form = forms_.get("source_form")
    if source_form is None and layout is not None and layout.platform:
        initial = {"source": upload.source, "timezone": upload.timezone}
        source_form = SourceForm(platform=layout.platform, initial=initial)
    kind = request.GET.get("kind") or (layout.kind if layout is not None else "customers")
    context = page_context(request, None, "source-list")
    context.update(
        {
            "upload": upload,
            "layout": layout,
            "platform": platform_label(layout.platform) if layout is not None and layout.platform else "",
            "progress": upload_progress(upload),
            # Each kind's first records as CLM will store them, with the columns they have.
            "samples": sorted(upload.preview.get("sample", {}).items(), key=_kinds_first),
            "counts": sorted(upload.preview.get("counts", {}).items(), key=_kinds_first),
            "results": sorted(upload.result.get("counts", {}).items(), key=_kinds_first),
            "source_form": source_form,
            "mapping_form": forms_.get("mapping_form")
            or MappingForm(kind=kind, header=upload.header, initial=_mapping_initial(upload)),
            "import_form": forms_.get("import_form") or ImportForm(initial={"mode": upload.mode}),
        }
    )
    return render(request, "sources/upload_detail.html", context, status=status)


def _kinds_first(item: tuple[str, Any]) -> tuple[int, str]:
    """Customers before orders, as they are written."""
    order = list(INGEST_KINDS)
    return (order.index(item[0]) if item[0] in order else len(order), item[0])


def _mapping_initial(upload: Upload) -> dict[str, str]:
    return {f"field_{name}": column for name, column in upload.columns.items()}


@require_GET
def upload_detail(request: HttpRequest, upload_id: int) -> HttpResponse:
    admin_required(request)
    upload = _upload_or_404(upload_id)
    if request.GET.get("kind") not in (None, *INGEST_KINDS):
        return redirect("upload-detail", upload.pk)
    return _detail_page(request, upload)


def _submit(
    request: HttpRequest,
    upload: Upload,
    form: forms.Form,
    save: Callable[[dict[str, Any]], Any],
    errors: Callable[[ValidationError], ValidationError] = lambda error: error,
) -> HttpResponse:
    """Save a valid form through its service and show the upload again; a refusal shows the form with the errors."""
    try:
        if form.is_valid():
            save(form.cleaned_data)
            return redirect("upload-detail", upload.pk)
    except ValidationError as exc:
        errors_add(form, errors(exc))
    return _detail_page(request, upload, status=400, **{_FORM_NAMES[type(form)]: form})


@require_POST
def upload_source(request: HttpRequest, upload_id: int) -> HttpResponse:
    admin_required(request)
    upload = _upload_or_404(upload_id)
    layout = layout_get(upload.layout)
    if layout is None or not layout.platform:
        return redirect("upload-detail", upload.pk)
    platform = layout.platform

    def save(data: dict[str, Any]) -> Upload:
        source = data["source"] or csv_source_create(
            name=data["new_name"],
            platform=platform,
            currency=data["new_currency"],
            id_prefix=data["new_id_prefix"],
            actor=request.user,
        )
        return upload_source_set(upload=upload, source=source, zone=data["timezone"])

    return _submit(request, upload, SourceForm(request.POST, platform=platform), save)


@require_POST
def upload_mapping(request: HttpRequest, upload_id: int) -> HttpResponse:
    admin_required(request)
    upload = _upload_or_404(upload_id)
    kind = request.POST.get("kind", "")
    if kind not in INGEST_KINDS:
        return redirect("upload-detail", upload.pk)
    form = MappingForm(request.POST, kind=kind, header=upload.header)
    return _submit(
        request,
        upload,
        form,
        lambda data: upload_mapping_set(upload=upload, kind=kind, columns=form.columns()),
        errors=_field_errors,
    )


def _field_errors(error: ValidationError) -> ValidationError:
    """The service names CLM's fields; the mapping form has a field_<name> for each."""
    if hasattr(error, "error_dict"):
        return ValidationError({f"field_{name}": messages for name, messages in error.message_dict.items()})
    return error


@require_POST
def upload_import(request: HttpRequest, upload_id: int) -> HttpResponse:
    admin_required(request)
    upload = _upload_or_404(upload_id)
    form = ImportForm(request.POST)
    return _submit(request, upload, form, lambda data: upload_import_queue(upload=upload, mode=data["mode"]))


@require_POST
def upload_delete(request: HttpRequest, upload_id: int) -> HttpResponse:
    admin_required(request)
    upload = _upload_or_404(upload_id)
    try:
        upload_discard(upload=upload)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("upload-detail", upload.pk)
    messages.success(request, _("The upload %(name)s was discarded.") % {"name": upload.file_name})
    return redirect("upload-list")


@require_GET
def upload_progress_json(request: HttpRequest, upload_id: int) -> JsonResponse:
    """What the page's progress bar polls."""
    admin_required(request)
    return JsonResponse(upload_progress(_upload_or_404(upload_id)))
