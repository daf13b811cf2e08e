import sys

from goldgate.cli import main

sys.exit(main())
