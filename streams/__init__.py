"""Streams: the Faust app and the batch pipeline it drives."""
