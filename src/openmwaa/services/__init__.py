"""openmwaa.services"""
