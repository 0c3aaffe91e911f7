"""The Gradio UI of app.py: one module per tab, shared helpers in ui.common."""
