"""The servers distributed mode needs besides Airflow: PostgreSQL and a Redis broker.

openmwaa runs them itself (:class:`~openmwaa.backing.managed.ManagedServer`, supervised, data
under the data directory, loopback only) unless their URLs are given
(``OPENMWAA_AIRFLOW_DATABASE_URL``, ``OPENMWAA_CELERY_BROKER_URL``).
"""

from openmwaa.backing.services import BackingServices, BackingUrls

__all__ = ["BackingServices", "BackingUrls"]
