"""Where models come from and which ones a worker serves."""
