from django.core.management.base import BaseCommand

from lifecycle.templates import TEMPLATES, template_install


class Command(BaseCommand):
    help = "Install a lifecycle model template (status, ecommerce, loyalty, basic); installing again changes nothing."

    def add_arguments(self, parser) -> None:
        parser.add_argument("key", choices=sorted(TEMPLATES))
        parser.add_argument("--reset", action="store_true", help="restore the template's stages and rules")
        parser.add_argument("--default", action="store_true", help="make it the default model if there is none")

    def handle(self, *args, key: str, reset: bool, default: bool, **options) -> None:
        model, changed = template_install(key=key, reset=reset, make_default=default)
        state = "installed" if changed else "already installed (use --reset to restore its rules)"
        self.stdout.write(f"{model.key}: {state}; {model.stages.count()} stages.")
