"""openmwaa.auth"""
