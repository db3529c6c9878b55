"""openmwaa.api"""
