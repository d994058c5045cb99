"""What the tests share: fakes of the outside services, real Redis, the cluster "world",
workloads with their C sources, paths. Fixtures built on these live in tests/conftest.py."""
