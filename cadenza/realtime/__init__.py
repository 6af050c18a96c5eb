"""The live engine: ports, clock, scheduler, phrase detection, audio out, controls (no torch)."""
