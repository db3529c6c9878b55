"""A helper package shipped in plugins.zip, imported by a DAG."""
