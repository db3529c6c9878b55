"""openmwaa.pipeline"""
