"""openmwaa.webserver"""
