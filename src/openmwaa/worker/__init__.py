"""``openmwaa worker``: a Celery worker on another machine, in an environment's worker pool."""
