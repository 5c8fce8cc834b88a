"""Engines that run the capture of `workbench.tracing` over many processes. `ray_engine`: Ray Data, one model replica
per actor, every actor committing its parts into the same run through TraceWriter (imported on use: Ray is big)."""
