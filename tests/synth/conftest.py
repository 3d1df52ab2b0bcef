import sys
from pathlib import Path

# the helper module with small test cores lives next to the tests
sys.path.insert(0, str(Path(__file__).parent))
