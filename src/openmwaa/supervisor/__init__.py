"""openmwaa.supervisor"""
