"""openmwaa.cli"""
