"""The Gradio app's pieces: configuration, model store, streaming, one module per tab.

`unlearn/` and `audits/` never import this package; it only wires them together.
"""
