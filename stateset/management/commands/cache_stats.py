from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from stateset.cache import cache_stats


class Command(BaseCommand):
    help = "Cache hits, misses and hit rate per entity, across all processes sharing the cache."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.CACHE_REDIS_URL:
            self.stdout.write(
                "Cache is process-local (no REDIS_URL): counts cover this process only.")
        for entity, stats in cache_stats().items():
            self.stdout.write(
                f"{entity:10s} hits {int(stats['hits']):10d}  misses {int(stats['misses']):10d}  "
                              f"hit rate {stats['hit_rate']:6.1%}  ttl "
                              f"{settings.CACHE_TTLS[entity]}s")
