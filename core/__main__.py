"""`python -m wia_security` is the `wia-security` command."""
import sys

from .cli import main

sys.exit(main())
