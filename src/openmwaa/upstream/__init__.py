"""Upstream HTTP: openmwaa's transport to each environment's Airflow on loopback.

``client`` (the keep-alive client and its per-origin pool), ``connection`` (one connection and
its bounded response parser), ``request`` (the request head, refused when anything could split
it), ``write_gate`` (one write at a time per Airflow API server), ``errors``. InvokeRestApi
(``services.invoke``) and the web endpoints' proxy (``webserver.proxy``) both call Airflow
through it.
"""
