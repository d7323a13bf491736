"""Uploads: receive a file within a size limit, read it safely, validate its
rows against a stream and publish the good ones."""
