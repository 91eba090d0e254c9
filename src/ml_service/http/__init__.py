"""The HTTP service: one route table, one request pipeline, codecs per dialect."""
