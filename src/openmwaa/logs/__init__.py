"""MWAA's CloudWatch logs, served from each environment's own log files."""
