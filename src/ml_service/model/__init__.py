"""The model: its input schema, training, and the artifact that carries it to the server."""
