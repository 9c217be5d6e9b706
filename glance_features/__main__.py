from glance_features.cli.main import run

run()
