"""Batch scoring of data files: on one machine (`ml-service score`) and on Spark."""
