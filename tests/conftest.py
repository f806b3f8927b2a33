import os
import sys
import tempfile
from pathlib import Path

# Real Qt widgets, offscreen; set before anything imports Qt.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Exported ONNX models are cached; keep the tests' cache out of the user's home.
os.environ.setdefault("WORKBENCH_CACHE_DIR", tempfile.mkdtemp(prefix="workbench-test-cache-"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
