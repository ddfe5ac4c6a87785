"""CSV files uploaded on /imports/: stored under DATA_DIR/uploads, their layout told from the header at once, checked
(the preview) and imported on the worker through lifecycle.sources.exports.pipeline.

Both the check and the import run on the worker: a 1 GB file takes longer to read than any request may. Their
progress is kept in a small file beside the upload, not in its row: an atomic import writes in one transaction, and
a row updated inside it would show nothing to the page until the end. The page polls `upload_progress`.
"""

import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.text import get_valid_filename
from django.utils.translation import gettext as _

from clm.base.history import audit_as
from clm.base.locks import job_lock
from lifecycle.ingest import INGEST_KINDS
from lifecycle.sources.exports.layouts import (
    clm_layout,
    header_check,
    layout_detect,
    layout_for_platform,
    layout_get,
    platform_label,
)
from lifecycle.sources.exports.pipeline import ExportRejected, ExportRun, export_check, export_import
from lifecycle.sources.exports.reading import ExportFile, ExportFileError
from lifecycle.sources.models import Source, Upload, UploadMode, UploadState
from lifecycle.sources.platforms import PLATFORMS
from lifecycle.sources.records import DEFAULT_CHANNEL_RULES
from lifecycle.sources.tasks import source_upload_check, source_upload_import
from lifecycle.tasks import reclassify_customers_on_commit

logger = logging.getLogger(__name__)
WORKING = (UploadState.CHECKING, UploadState.QUEUED, UploadState.RUNNING)


class UploadRefused(Exception):
    """The file is no CSV CLM can read, or not what it was said to be: nothing of it is kept."""


def uploads_dir() -> Path:
    return Path(settings.DATA_DIR) / "uploads"


def upload_file(upload: Upload) -> Path:
    return uploads_dir() / upload.path


def _progress_file(upload: Upload) -> Path:
    return upload_file(upload).parent / "progress.json"


def csv_source_create(*, name: str, platform: str, currency: str, id_prefix: str = "", actor: Any) -> Source:
    """A source for a shop that is brought in by its CSV exports only: no address, no credentials (an admin can add
    them later on the source's page). It keeps what the exports need: currency, completed statuses, channel rules,
    id prefix, so a later API connection continues the same customers and orders."""
    currency = currency.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ValidationError({"currency": _("Give the ISO 4217 code, e.g. EUR.")})
    if not name.strip():
        raise ValidationError({"name": _("Give the shop a name.")})
    if Source.objects.filter(name=name.strip()).exists():
        raise ValidationError({"name": _("Another source has this name.")})
    if Source.objects.filter(id_prefix=id_prefix.strip()).exists():
        raise ValidationError(
            {"id_prefix": _("Another source uses this id prefix: give each shop its own, e.g. de- and at-.")}
        )
    source = Source(
        name=name.strip(),
        platform=platform,
        shop_url="",
        currency=currency,
        id_prefix=id_prefix.strip(),
        completed_statuses=list(PLATFORMS[platform].default_completed_statuses),
        channel_rules=list(DEFAULT_CHANNEL_RULES),
        status_message=_("CSV exports only: no shop address or credentials."),
    )
    audit_as(source, actor=actor, reason="CSV-only source created")
    source.save()
    return source


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError({"timezone": _("Unknown time zone %(zone)s.") % {"zone": name}}) from None


def _stored(file: UploadedFile) -> Path:
    """Move (or stream) the upload into a folder of its own; it is never read into memory whole."""
    folder = uploads_dir() / uuid.uuid4().hex
    folder.mkdir(parents=True)
    target = folder / (get_valid_filename(Path(file.name or "upload.csv").name) or "upload.csv")
    temporary = getattr(file, "temporary_file_path", None)
    if temporary is not None:
        shutil.move(temporary(), target)  # TemporaryFileUploadHandler's file: no copy on the same disk
        file.close()  # its temporary file is gone: closed now, not by the garbage collector
    else:
        with target.open("wb") as out:
            for chunk in file.chunks():
                out.write(chunk)
    return target


def _layout_for(header: list[str], source: Source | None) -> str:
    if source is not None:
        return layout_for_platform(source.platform, header).key
    layout = layout_detect(header)
    if layout is not None and layout.platform:
        header_check(layout, header)
    return layout.key if layout is not None else ""


def upload_store(*, file: UploadedFile, source: Source | None, zone: str, actor: Any) -> Upload:
    """Keep an uploaded file and tell its layout from the header; raise UploadRefused (and keep nothing) for a file
    that is not a CSV, not UTF-8 in its first line, or another platform's export than the source's."""
    zone_of(zone)
    path = _stored(file)
    try:
        with ExportFile(path) as export:
            header = export.header
        layout_key = _layout_for(header, source)
    except ExportFileError as exc:
        shutil.rmtree(path.parent, ignore_errors=True)
        raise UploadRefused(str(exc)) from None
    layout = layout_get(layout_key)
    if layout is not None and layout.platform and source is None:
        matching = list(Source.objects.filter(platform=layout.platform)[:2])
        source = matching[0] if len(matching) == 1 else None  # the one shop of that platform, else the admin picks
    upload = Upload.objects.create(
        file_name=(file.name or "upload.csv")[:255],
        path=str(path.relative_to(uploads_dir())),
        size=path.stat().st_size,
        layout=layout_key,
        header=header,
        source=source if layout is not None and layout.platform else None,
        timezone=zone,
        state=_state_before_check(layout, source),
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    if upload.state == UploadState.CHECKING:
        _check_queue(upload)
    return upload


def _state_before_check(layout: Any, source: Source | None) -> str:
    if layout is None:
        return UploadState.NEEDS_MAPPING
    if layout.platform and source is None:
        return UploadState.NEEDS_SOURCE
    return UploadState.CHECKING


def _check_queue(upload: Upload) -> None:
    _progress_write(upload, 0)
    transaction.on_commit(lambda: source_upload_check.delay(upload.pk))


def upload_source_set(*, upload: Upload, source: Source, zone: str) -> Upload:
    """Read a platform export as this shop's, with times without an offset in `zone`; the check starts again."""
    layout = layout_get(upload.layout)
    if upload.state in WORKING or layout is None or not layout.platform:
        raise ValidationError(_("This upload takes no shop now."))
    if source.platform != layout.platform:
        names = {"layout": layout.label, "platform": platform_label(source.platform)}
        raise ValidationError({"source": _("This looks like a %(layout)s, not %(platform)s.") % names})
    zone_of(zone)
    upload.source, upload.timezone = source, zone
    return _recheck(upload)


def upload_mapping_set(*, upload: Upload, kind: str, columns: dict[str, str]) -> Upload:
    """Read a file of unknown layout as CLM's `kind`, each field from the file column mapped to it."""
    if upload.state in WORKING or kind not in INGEST_KINDS:
        raise ValidationError(_("This upload takes no column mapping now."))
    fields = INGEST_KINDS[kind].csv_columns()
    mapped = {name: column for name, column in columns.items() if name in fields and column in upload.header}
    missing = [name for name in INGEST_KINDS[kind].required_columns() if name not in mapped]
    if missing:
        raise ValidationError({name: _("Required: choose the file's column for it.") for name in missing})
    upload.layout, upload.columns = clm_layout(kind).key, mapped
    return _recheck(upload)


def _recheck(upload: Upload) -> Upload:
    upload.state, upload.progress, upload.preview, upload.result, upload.message = UploadState.CHECKING, 0, {}, {}, ""
    upload.save()
    _check_queue(upload)
    return upload


def upload_import_queue(*, upload: Upload, mode: str) -> Upload:
    if upload.state != UploadState.READY:
        raise ValidationError(_("Only a checked upload can be imported."))
    if mode == UploadMode.ATOMIC and upload.preview.get("error_count"):
        raise ValidationError(
            _(
                "The file has %(count)d error(s): an all-or-nothing import would write nothing. Fix the file, or "
                "skip the invalid lines."
            )
            % {"count": upload.preview["error_count"]}
        )
    upload.mode, upload.state, upload.progress, upload.message = mode, UploadState.QUEUED, 0, ""
    upload.save()
    _progress_write(upload, 0)
    transaction.on_commit(lambda: source_upload_import.delay(upload.pk))
    return upload


def upload_discard(*, upload: Upload) -> None:
    if upload.state in (UploadState.QUEUED, UploadState.RUNNING):
        raise ValidationError(_("An import that is under way cannot be discarded."))
    shutil.rmtree(upload_file(upload).parent, ignore_errors=True)
    upload.delete()


def uploads_expire(*, now: datetime) -> int:
    """Delete the uploads left without an import for CLM_UPLOAD_KEEP_DAYS, their files with them (a file holds
    customers' personal data, and an upload nobody imports would keep it on disk for good); returns how many.
    Imported uploads stay listed: their files went when they were imported."""
    expired = Upload.objects.filter(created_at__lt=now - timedelta(days=settings.CLM_UPLOAD_KEEP_DAYS)).exclude(
        state__in=[UploadState.QUEUED, UploadState.RUNNING, UploadState.DONE]
    )
    count = 0
    for upload in expired:
        upload_discard(upload=upload)
        count += 1
    return count


# --- on the worker --------------------------------------------------------------------------------------------


def _run(upload: Upload) -> ExportRun:
    layout = layout_get(upload.layout)
    if layout is None:
        raise ExportFileError("the file's layout is not known: map its columns first")
    return ExportRun(
        files=[(upload_file(upload), layout)],
        source=upload.source if layout.platform else None,
        zone=zone_of(upload.timezone),
        columns=upload.columns or None,
    )


def _progress_write(upload: Upload, percent: int) -> None:
    path = _progress_file(upload)
    if not path.parent.is_dir():
        return
    partial = path.with_suffix(".part")
    partial.write_text(json.dumps({"percent": percent}))
    os.replace(partial, path)  # the page never reads half a file


def _progress_reporter(upload: Upload) -> Callable[[int, int], None]:
    shown = {"percent": -1}

    def report(done: int, total: int) -> None:
        percent = min(99, done * 100 // total) if total else 0
        if percent > shown["percent"]:
            shown["percent"] = percent
            _progress_write(upload, percent)

    return report


def _finish(upload: Upload, state: str, **fields: Any) -> str:
    for name, value in fields.items():
        setattr(upload, name, value)
    upload.state, upload.finished_at = state, timezone.now()
    upload.progress = 100 if state in (UploadState.READY, UploadState.DONE) else upload.progress
    upload.save()
    return state


def upload_check_run(*, upload_id: int) -> str:
    """The check (preview): every line read, mapped, validated and compared with what is stored; nothing written."""
    upload = Upload.objects.select_related("source").get(pk=upload_id)
    if upload.state != UploadState.CHECKING:
        return upload.state
    try:
        report = export_check(run=_run(upload), on_progress=_progress_reporter(upload))
    except ExportFileError as exc:
        return _finish(upload, UploadState.FAILED, message=str(exc))
    return _finish(upload, UploadState.READY, preview=report.as_json())


def upload_import_run(*, upload_id: int) -> str:
    """The import, atomic or skipping invalid lines; a redelivered task (its worker died) starts it again."""
    with job_lock(f"upload-import-{upload_id}") as acquired:
        if not acquired:
            return UploadState.RUNNING
        upload = Upload.objects.select_related("source").get(pk=upload_id)
        if upload.state not in (UploadState.QUEUED, UploadState.RUNNING):
            return upload.state
        upload.state, upload.started_at = UploadState.RUNNING, timezone.now()
        upload.save(update_fields=["state", "started_at"])
        try:
            report = export_import(
                run=_run(upload),
                skip_invalid=upload.mode == UploadMode.SKIP_INVALID,
                on_progress=_progress_reporter(upload),
            )
        except ExportRejected as exc:
            message = _("%(count)d error(s): nothing was imported.") % {"count": exc.report.error_count}
            return _finish(upload, UploadState.READY, preview=exc.report.as_json(), message=message)
        except ExportFileError as exc:
            return _finish(upload, UploadState.FAILED, message=str(exc))
        except Exception as exc:
            logger.exception("the import of upload %s stopped", upload_id)
            return _finish(upload, UploadState.FAILED, message=_("The import stopped: %(error)s") % {"error": exc})
        with transaction.atomic():
            state = _finish(upload, UploadState.DONE, result=report.as_json())
            reclassify_customers_on_commit(report.touched_customer_ids)
        shutil.rmtree(upload_file(upload).parent, ignore_errors=True)  # imported: the data is in CLM now
        return state


def upload_progress(upload: Upload) -> dict[str, Any]:
    """What the page's progress bar polls."""
    percent = upload.progress
    if upload.state in WORKING:
        try:
            percent = int(json.loads(_progress_file(upload).read_text())["percent"])
        except (OSError, ValueError, KeyError):
            percent = 0
    return {
        "state": upload.state,
        "state_display": upload.get_state_display(),
        "percent": percent,
        "working": upload.state in WORKING,
    }
