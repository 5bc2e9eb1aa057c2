"""``python -m squeeze_studio.synth make --count N --seed S --split train --out DIR``."""
import sys

from .cli import main

sys.exit(main())
