"""openmwaa.runtime"""
