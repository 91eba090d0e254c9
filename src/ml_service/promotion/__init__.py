"""From a trained artifact to production: tracked training in MLflow, the MLflow model registry
as a source of artifacts, and the comparison of a challenger with the champion."""
