"""Celery entry points of the orders app: take arguments, call one function."""

from celery import shared_task

from orders import rollups


@shared_task(ignore_result=True)
def order_days_refresh(days: int = 2) -> int:
    """Every minute (today and yesterday) and every hour (the last five weeks, for orders whose
    status changed since): the dashboard's daily rollup."""
    return rollups.order_days_refresh(days=days)
