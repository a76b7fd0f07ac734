"""Optional ways to run a model faster: each thin over the core."""
