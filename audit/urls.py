from django.urls import path

from audit.api import AuditView

urlpatterns = [path("audit", AuditView.as_view(), name="audit")]
