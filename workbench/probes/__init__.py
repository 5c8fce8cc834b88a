"""Library side of the probes (experiments built on capture + trace); their command-line scripts live in the
repository's top-level probes/ folder."""
