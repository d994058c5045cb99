"""Custom probes: folders operators drop into `BPFSLEUTH_PROBE_PATH` (`loader`), the approval of
their exact content (`approval`), and the YAML-driven reader that stands in for Python
(`generic_reader`)."""
