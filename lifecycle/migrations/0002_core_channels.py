from django.db import migrations

CORE_CHANNELS = [
    ("paid_ads", "Paid ads", "Bezahlte Anzeigen", "Display, social and shopping ads bought per impression or click"),
    ("organic_social", "Organic social", "Organische soziale Medien", "Unpaid posts and community on social networks"),
    ("organic_search", "Organic search", "Organische Suche", "Unpaid search engine results"),
    ("email", "Email", "E-Mail", "Newsletters, lifecycle and transactional email"),
    ("app_notifications", "App notifications", "App-Benachrichtigungen", "Push notifications of the shop's app"),
    ("referral", "Referral", "Empfehlung", "Customers recommending the shop to friends"),
    ("direct", "Direct", "Direkt", "Typed-in address, bookmarks, no known source"),
]


def create_channels(apps, schema_editor):
    Channel = apps.get_model("lifecycle", "Channel")
    for key, name_en, name_de, description in CORE_CHANNELS:
        Channel.objects.get_or_create(
            key=key, defaults={"name_en": name_en, "name_de": name_de, "description": description}
        )


def delete_channels(apps, schema_editor):
    apps.get_model("lifecycle", "Channel").objects.filter(key__in=[c[0] for c in CORE_CHANNELS]).delete()


class Migration(migrations.Migration):
    dependencies = [("lifecycle", "0001_initial")]
    operations = [migrations.RunPython(create_channels, delete_channels)]
