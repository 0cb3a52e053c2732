"""The Hub Space of this module: evaluate's standard Gradio widget over ``nist_multiref`` (loaded from this folder)."""

from pathlib import Path

import evaluate
from evaluate.utils import launch_gradio_widget

module = evaluate.load(str(Path(__file__).resolve().parent))
launch_gradio_widget(module)
