"""Which layout a CSV file has, told from its header: a platform's export, CLM's own columns of an ingest kind, or
unknown (the upload page then asks for a column mapping). Also the messages for a file that is not what it was
said to be ("this looks like a WooCommerce order export, not Shopify")."""

from pathlib import Path

from lifecycle.ingest import INGEST_KINDS
from lifecycle.sources.exports import shopify, shopware, woocommerce
from lifecycle.sources.exports.common import Layout
from lifecycle.sources.exports.reading import ExportFileError
from lifecycle.sources.models import Platform

PLATFORM_LAYOUTS: dict[str, Layout] = {
    layout.key: layout for module in (shopify, woocommerce, shopware) for layout in module.LAYOUTS
}
CLM_PREFIX = "clm_"
UNKNOWN = ""


def clm_layout(kind: str) -> Layout:
    """CLM's own columns (docs/IMPORT.md) of an ingest kind; read without a source."""
    return Layout(key=f"{CLM_PREFIX}{kind}", platform="", kind=kind, label=f"CLM {kind} file")


def layout_get(key: str) -> Layout | None:
    if key.startswith(CLM_PREFIX) and key.removeprefix(CLM_PREFIX) in INGEST_KINDS:
        return clm_layout(key.removeprefix(CLM_PREFIX))
    return PLATFORM_LAYOUTS.get(key)


def layout_detect(header: list[str]) -> Layout | None:
    """The layout whose signature the header carries; CLM's own when every column is a field of one kind and its
    required fields are there; None when neither."""
    names = set(header)
    for layout in PLATFORM_LAYOUTS.values():
        if layout.signature <= names:
            return layout
    for kind in INGEST_KINDS.values():
        if names <= set(kind.csv_columns()) and set(kind.required_columns()) <= names:
            return clm_layout(kind.name)
    return None


def missing_columns(layout: Layout, header: list[str]) -> list[str]:
    """The layout's required columns the header lacks (`a|b`: either will do)."""
    names = set(header)
    return [column for column in layout.required if not names & set(column.split("|"))]


def header_check(layout: Layout, header: list[str]) -> None:
    missing = missing_columns(layout, header)
    if missing:
        wanted = ", ".join(column.replace("|", " or ") for column in missing)
        raise ExportFileError(f"line 1: this {layout.label} lacks the column(s) {wanted}: export it again in full")


def platform_label(platform: str) -> str:
    return str(Platform(platform).label) if platform in Platform.values else platform


def layout_for_platform(platform: str, header: list[str]) -> Layout:
    """The layout of a file said to be an export of `platform`; ExportFileError naming what it looks like instead."""
    detected = layout_detect(header)
    expected = platform_label(platform)
    if detected is not None and detected.platform == platform:
        header_check(detected, header)
        return detected
    if detected is None:
        raise ExportFileError(
            f"line 1: this is not a {expected} customer or order export: its columns are neither's "
            f"(it has {', '.join(header[:6])}{', …' if len(header) > 6 else ''})"
        )
    if not detected.platform:
        raise ExportFileError(
            f"line 1: this looks like a {detected.label} in CLM's own columns, not a {expected} export: "
            "import it without --format"
        )
    raise ExportFileError(f"line 1: this looks like a {detected.label}, not {expected}")


def customers_first(layouts: list[tuple[Path, Layout]]) -> list[tuple[Path, Layout]]:
    """Customers exports before order exports: an order export names customers only by email, which the customers
    export of the same run ties to their ids."""
    return sorted(layouts, key=lambda item: item[1].kind != "customers")
