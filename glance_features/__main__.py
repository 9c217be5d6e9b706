import sys

from glance_features.cli import main

sys.exit(main())
