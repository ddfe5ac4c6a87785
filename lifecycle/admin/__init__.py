"""Admin: browse the shop data; admins edit lifecycle models, stages, rules and channels (SPEC §1, §3).

- Editing lifecycle models, stages and rules needs the admin role (superusers count); other staff users
  with view permission see them read-only.
- Models, stages, rules and channels keep an audit history (django-simple-history): who, when, and the
  before/after of every field, on each object's History page. Past versions are shown, never restored:
  a restore would bypass validation, the preview and the reclassification run.
- A rule is edited as one row per condition. Saving goes through a preview (how many customers would move
  from which stage to which, lifecycle.preview); confirming saves it and queues a full `rule_change` run
  of the model once the change is committed. Stage or fallback changes that alter the classification
  queue the same run.
- A stage that customers are in (or have been in) is not deleted: the refusal gives the count
  (docs/LIFECYCLE_ADMIN.md explains the decision).

The pages are thin: the workflow behind them (preview, version check, save, history, runs, deletion checks) is
lifecycle.rule_changes. One module per area administered; importing them here registers them with the admin
site (Django's autodiscovery imports this package).
"""

from lifecycle.admin import data, models, rules
from lifecycle.admin.common import AdminRoleEditing

__all__ = ["AdminRoleEditing", "data", "models", "rules"]
