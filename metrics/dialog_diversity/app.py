"""The Hub Space of this module: evaluate's standard Gradio widget over ``dialog_diversity`` (loaded from this folder)."""

from pathlib import Path

import evaluate
from evaluate.utils import launch_gradio_widget

module = evaluate.load(str(Path(__file__).resolve().parent), module_type="measurement")
launch_gradio_widget(module)
