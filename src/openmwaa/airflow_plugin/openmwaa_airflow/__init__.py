"""Code openmwaa installs into every Airflow runtime it supervises.

* ``openmwaa_airflow.auth_manager`` -- Airflow 3: ``[core] auth_manager =
  openmwaa_airflow.auth_manager.OpenMwaaAuthManager``. Users come only from JWTs openmwaa mints
  (``sub`` = Airflow user name, ``role`` = ADMIN/OP/USER/VIEWER/PUBLIC); no passwords.
* ``openmwaa_airflow.auth_backend`` -- Airflow 2: ``[api] auth_backends =
  openmwaa_airflow.auth_backend``. Bearer JWTs signed with ``OPENMWAA_TOKEN_SECRET`` become FAB users
  holding exactly the named role.

This package runs inside Airflow's own virtualenv, so it imports Airflow and nothing from openmwaa;
importing this package itself imports nothing.
"""
