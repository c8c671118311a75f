from django.urls import path
from rest_framework.routers import SimpleRouter

from orders.api import CustomerOrdersView, OrderViewSet

router = SimpleRouter(trailing_slash=False)
router.register("orders", OrderViewSet, basename="order")

urlpatterns = [
    path("customers/<uuid:customer_id>/orders", CustomerOrdersView.as_view(),
         name="customer-orders"),
    *router.urls,
]
