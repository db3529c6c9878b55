"""Example content bundled with openmwaa (the default environment's DAG folder)."""
