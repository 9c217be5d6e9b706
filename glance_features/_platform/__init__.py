"""Private helpers between the probe and the operating system: files, processes,
mounts, installed distributions, eventlet's patches. Not a public API."""
