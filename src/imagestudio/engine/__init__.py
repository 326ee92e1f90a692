"""Loading pipelines, lending them out, and running them."""
